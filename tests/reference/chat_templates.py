"""Reference renderings for hone's chat templates (src/chat/template.c, src/chat/jinja*.c).

Renders a fixed set of conversations, with add_generation_prompt false and true, through
transformers' own chat-template renderer (transformers.utils.chat_template_utils.
render_jinja_template: the jinja2 sandbox with trim_blocks, lstrip_blocks, loopcontrols,
{% generation %}, raise_exception, strftime_now, tojson), for
  - the chat_template of every ../shared/tokenizers/*/tokenizer_config.json that has one
    (the template is read from ../shared at test time; only outputs are stored here),
  - hone's built-in formats written as Jinja (chatml as the seed pipeline writes it, the
    Llama-2-chat, Llama-3-Instruct, Gemma and Zephyr templates), which the C built-ins
    must reproduce byte for byte,
  - two templates of our own that exercise the Jinja features (stored in the fixture).
Writes tests/fixtures/chat/chat_templates.json.
Usage: /work/venv/bin/python tests/reference/chat_templates.py
"""
import glob
import json
import os
import re

from transformers.utils.chat_template_utils import render_jinja_template

root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
shared = os.path.join(root, "..", "shared")

CONVERSATIONS = [
    [{"role": "user", "content": "Hello!"}],
    [{"role": "system", "content": "You are a helpful assistant."}, {"role": "user", "content": "What is 2+2?"}],
    [{"role": "user", "content": "  Tell me a joke.  \n"}, {"role": "assistant", "content": " Why did the chicken cross the road?\n"}],
    [
        {"role": "system", "content": "Answer briefly.\n"},
        {"role": "user", "content": "Say hi in German."},
        {"role": "assistant", "content": "Grüße 🌍"},
        {"role": "user", "content": "And in French?"},
        {"role": "assistant", "content": "Salut !"},
    ],
    [{"role": "user", "content": "Think first."}, {"role": "assistant", "content": "<think>\nplanning\n</think>\n\nDone."}],
    [{"role": "assistant", "content": "I start."}, {"role": "user", "content": "Odd order."}],
]

BUILTIN = {
    "chatml": "{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content if m.role == 'assistant' else m.content.strip() }}<|im_end|>\n{% endfor %}"
              "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}",
    "llama2": "{% if messages[0]['role'] == 'system' %}{% set loop_messages = messages[1:] %}{% set system_message = messages[0]['content'] %}"
              "{% else %}{% set loop_messages = messages %}{% set system_message = false %}{% endif %}{% for message in loop_messages %}"
              "{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}"
              "{% if loop.index0 == 0 and system_message != false %}{% set content = '<<SYS>>\\n' + system_message + '\\n<</SYS>>\\n\\n' + message['content'] %}"
              "{% else %}{% set content = message['content'] %}{% endif %}{% if message['role'] == 'user' %}{{ bos_token + '[INST] ' + content.strip() + ' [/INST]' }}"
              "{% elif message['role'] == 'assistant' %}{{ ' '  + content.strip() + ' ' + eos_token }}{% endif %}{% endfor %}",
    "llama3": "{% set loop_messages = messages %}{% for message in loop_messages %}{% set content = '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n'"
              "+ message['content'] | trim + '<|eot_id|>' %}{% if loop.index0 == 0 %}{% set content = bos_token + content %}{% endif %}{{ content }}{% endfor %}"
              "{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %}",
    "gemma": "{{ bos_token }}{% if messages[0]['role'] == 'system' %}{% set first_user_prefix = messages[0]['content'] + '\n\n' %}{% set loop_messages = messages[1:] %}"
             "{% else %}{% set first_user_prefix = '' %}{% set loop_messages = messages %}{% endif %}{% for message in loop_messages %}"
             "{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}"
             "{% if message['role'] == 'assistant' %}{% set role = 'model' %}{% else %}{% set role = message['role'] %}{% endif %}"
             "{{ '<start_of_turn>' + role + '\n' + (first_user_prefix if loop.first else '') }}{{ message['content'] | trim }}{{ '<end_of_turn>\n' }}{% endfor %}"
             "{% if add_generation_prompt %}{{ '<start_of_turn>model\n' }}{% endif %}",
    "zephyr": "{% for message in messages %}\n{% if message['role'] == 'user' %}\n{{ '<|user|>\n' + message['content'] + eos_token }}\n"
              "{% elif message['role'] == 'system' %}\n{{ '<|system|>\n' + message['content'] + eos_token }}\n{% elif message['role'] == 'assistant' %}\n"
              "{{ '<|assistant|>\n'  + message['content'] + eos_token }}\n{% endif %}\n{% if loop.last and add_generation_prompt %}\n{{ '<|assistant|>' }}\n{% endif %}\n{% endfor %}",
}
BUILTIN_TOKENS = {"chatml": ("", "<|im_end|>"), "llama2": ("<s>", "</s>"), "llama3": ("<|begin_of_text|>", "<|eot_id|>"),
                  "gemma": ("<bos>", "<eos>"), "zephyr": ("<s>", "</s>")}

OWN = {
    "features": """{%- macro fmt(m, prefix='> ') -%}{{ prefix ~ m.role|upper }}: {{ m.content|trim|replace('a', 'A') }}{%- endmacro -%}
{%- set ns = namespace(n=0) -%}
{%- for m in messages if m.role != 'system' -%}
{{ fmt(m) }} [{{ loop.index }}/{{ loop.length }}{{ ' first' if loop.first }}{{ ' last' if loop.last }}]
{% set ns.n = ns.n + m.content|length %}
{%- endfor %}
total={{ ns.n }} {{ messages|length }} {{ messages|map(attribute='role')|list|tojson }} {{ messages[-1].content[:5] }}|{{ messages[0].content[::-1] }}|{{ 7 // 2 }} {{ -7 % 3 }} {{ 2 ** 10 }} {{ 1.5 * 2 }} {{ 10 / 4 }} {{ 'x' in 'xyz' }} {{ 'q' not in ['a'] }} {{ none }} {{ [1, 'a', none, true] }} {{ {'k': "it's"} }}
{%- if messages[0].role is string and messages[0].missing is not defined %} ok{% endif %}
{{ messages[0].content.split()|join(',') }} {{ 'a-b-c'.split('-', 1) }} {{ 'Hello'.startswith(('x', 'He')) }} {{ '  pad  '.rstrip() }}. {{ messages|selectattr('role', 'equalto', 'user')|list|length }}
{%- for k, v in {'a': 1, 'b': 2}.items() %} {{ k }}={{ v }}{% endfor %}
{%- for i in range(5) %}{% if i == 1 %}{% continue %}{% endif %}{% if i == 3 %}{% break %}{% endif %} i{{ i }}{% else %}none{% endfor %}
{# a comment #}
    {% if true %}
    indented {{ 'yes' if messages|length > 1 else 'no' }}
    {% endif %}
{{ "esc\\"aped" ~ 'it\\'s' }} {{ 0.1 + 0.2 }} {{ 1e20 }} {{ 3.0 }} {{ 1e-7 }} {{ 123456789.0 * 1000 }} {{ messages[0]['content'] | tojson }}
{%- set block %}[{{ messages[0].role | capitalize }}]{% endset %} {{ block }} {{ (messages | last).role }} {{ bos_token | default('nobos') }} {{ undefined_thing | default('dflt') }}
{{ '\\u00e9\\x41' }} {{ (3).foo }}|{{ 1e3 }} {{ (3).foo is defined }} {{ messages|first|attr('role') if false else 'x' }}
""",
    # shapes of widely used model templates (Mistral-Instruct, SmolLM2, Phi-3, Llama-3.1):
    # indented {%- -%} blocks, messages reassigned, `in` on dicts, defaults via `is defined`
    "mistral_like": """{%- if messages[0]['role'] == 'system' %}
    {%- set system_message = messages[0]['content'] %}
    {%- set loop_messages = messages[1:] %}
{%- else %}
    {%- set loop_messages = messages %}
{%- endif %}

{{- bos_token }}
{%- for message in loop_messages %}
    {%- if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}
        {{- raise_exception('After the optional system message, conversation roles must alternate user/assistant/user/assistant/...') }}
    {%- endif %}
    {%- if message['role'] == 'user' %}
        {%- if loop.first and system_message is defined %}
            {{- ' [INST] ' + system_message + '\n\n' + message['content'] + ' [/INST]' }}
        {%- else %}
            {{- ' [INST] ' + message['content'] + ' [/INST]' }}
        {%- endif %}
    {%- elif message['role'] == 'assistant' %}
        {{- ' ' + message['content'] + eos_token}}
    {%- else %}
        {{- raise_exception('Only user and assistant roles are supported, with the exception of an initial optional system message!') }}
    {%- endif %}
{%- endfor %}
""",
    "smollm2_like": "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}{{ '<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n' }}{% endif %}"
                    "{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}",
    "phi3_like": "{% for message in messages %}{% if message['role'] == 'system' %}{{'<|system|>\n' + message['content'] + '<|end|>\n'}}{% elif message['role'] == 'user' %}"
                 "{{'<|user|>\n' + message['content'] + '<|end|>\n'}}{% elif message['role'] == 'assistant' %}{{'<|assistant|>\n' + message['content'] + '<|end|>\n'}}{% endif %}"
                 "{% endfor %}{% if add_generation_prompt %}{{ '<|assistant|>\n' }}{% else %}{{ eos_token }}{% endif %}",
    "llama31_like": """{{- bos_token }}
{%- if custom_tools is defined %}
    {%- set tools = custom_tools %}
{%- endif %}
{%- if not tools_in_user_message is defined %}
    {%- set tools_in_user_message = true %}
{%- endif %}
{%- if not date_string is defined %}
    {%- set date_string = "26 Jul 2024" %}
{%- endif %}
{%- if not tools is defined %}
    {%- set tools = none %}
{%- endif %}

{#- This block extracts the system message, so we can slot it into the right place. #}
{%- if messages[0]['role'] == 'system' %}
    {%- set system_message = messages[0]['content']|trim %}
    {%- set messages = messages[1:] %}
{%- else %}
    {%- set system_message = "" %}
{%- endif %}

{#- System message + builtin tools #}
{{- "<|start_header_id|>system<|end_header_id|>\n\n" }}
{%- if builtin_tools is defined or tools is not none %}
    {{- "Environment: ipython\n" }}
{%- endif %}
{{- "Cutting Knowledge Date: December 2023\n" }}
{{- "Today Date: " + date_string + "\n\n" }}
{{- system_message }}
{{- "<|eot_id|>" }}

{%- for message in messages %}
    {%- if not (message.role == 'ipython' or message.role == 'tool' or 'tool_calls' in message) %}
        {{- '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n'+ message['content'] | trim + '<|eot_id|>' }}
    {%- endif %}
{%- endfor %}
{%- if add_generation_prompt %}
    {{- '<|start_header_id|>assistant<|end_header_id|>\n\n' }}
{%- endif %}
""",
    "generation": "{% for m in messages %}<|{{ m.role }}|>{% if m.role == 'assistant' %}{% generation %}{{ m.content }}<|end|>{% endgeneration %}"
                  "{% else %}{{ m.content }}<|end|>{% endif %}\n{% endfor %}{% if add_generation_prompt %}<|assistant|>{% endif %}",
}


# small templates for the corners of the language (whitespace control, lstrip/trim_blocks,
# raw, comments, loops, macros, namespaces, filters, tests, slicing, number formatting),
# each rendered once on conversation 3 with add_generation_prompt true
SNIPPETS = [
 "a\n  {% if true %}\n  b\n  {% endif %}\n c",
 "a  {% if true %}x{% endif %}  b",
 "{% for m in messages %}\n  {{ m.role }}\n{% endfor %}\n",
 "{%+ if true %}x{% endif %}\n   {%+ if true %}y{% endif %}",
 "  {# c #}\nq\n  {#- c -#}  \n r",
 "{% raw %}{{ x }}{% endraw %}\nafter",
 "{{- ' a ' -}}  \n  {{- 'b' }}",
 "x\r\ny\rz\n",
 "{% set x = 3 %}{% if x > 2 %}big{% elif x > 1 %}mid{% else %}small{% endif %}",
 "{% for m in messages %}{{ loop.revindex }}{{ loop.previtem.role if loop.previtem is defined else '-' }}{% endfor %}",
 "{{ messages | map(attribute='content') | join('|') }}",
 "{{ messages | selectattr('role', 'equalto', 'user') | map(attribute='content') | first | trim }}",
 "{{ 'abc'[1:] }}{{ 'abc'[-1] }}{{ [1,2,3][::2] }}{{ 'héllo'[1:3] }}",
 "{{ '%s'|length }} {{ 'a,b'.split(',')|length }} {{ ' x '.strip() }}",
 "{{ 10 % 3 }} {{ -10 // 3 }} {{ 2 ** -1 }} {{ 7 / 7 }} {{ 0.1 * 3 }}",
 "{{ [] | length }} {{ {} | tojson }} {{ {'a': [1, 2.5, none, true, 'x\"y']} | tojson }} {{ ['é'] | tojson }}",
 "{{ messages[0] | tojson(indent=2) }}",
 "{{ 'Hello World'.title() }} {{ 'hello world'.capitalize() }} {{ 'ABC'.lower() }}",
 "{% macro f(a, b='B') %}[{{ a }}{{ b }}]{% endmacro %}{{ f(1) }}{{ f(1, 2) }}{{ f(b=3, a=4) }}",
 "{% for i in range(3) %}{% for j in range(2) %}{{ i }}{{ j }}{% if j == 0 %}{% continue %}{% endif %};{% endfor %}{% endfor %}",
 "{% set ns = namespace(found=false) %}{% for m in messages %}{% if m.role == 'user' %}{% set ns.found = true %}{% endif %}{% endfor %}{{ ns.found }}",
 "{% for m in messages %}{% set x = m.role %}{% endfor %}{{ x is defined }}",
 "{{ messages[5] is defined }} {{ messages[-1].role }} {{ messages|last|attr('x') is defined if false else 1 }}",
 "{{ 'a' ~ 1 ~ none ~ true }} {{ 1 == 1.0 }} {{ 'a' < 'b' }} {{ [1] == [1] }} {{ not none }}",
 "{{ 'x' if false }}|{{ 'y' if true }}|{{ none or 'z' }}|{{ 0 and 1 }}",
 "{{ 'abcabc'.replace('b', 'X', 1) }} {{ 'abc'.find('c') }} {{ 'aXbXc'.split('X', 1) }} {{ '  a  b '.split() }}",
 "{% if messages[0].content is string and messages is iterable and messages[0] is mapping %}ok{% endif %}",
 "{{ add_generation_prompt }} {{ bos_token }}{{ eos_token }}",
 "{% for k, v in messages[0].items() %}{{ k }}={{ v }};{% endfor %}",
 "{{ messages | length is even }} {{ 3 is odd }} {{ 9 is divisibleby 3 }} {{ 9 is divisibleby(2) }}",
 "{% set a, b = 1, 2 %}{{ a }}{{ b }}",
 "{{ (1, 2) }} {{ [1, [2, 'x']] }} {{ 1.0e-10 }} {{ 123456789012345678 }} {{ 1.5e300 * 1e10 }}",
 "{{ '\\n'|length }} {{ \"it's\" }} {{ 'tab\\there' }}",
 "{% if true %}\n    x\n{%- endif %}\n",
 "   {%- if true -%}   \n   y   \n   {%- endif -%}   \n",
 "{{ messages | map('upper') | list if false else messages | map(attribute='role') | map('upper') | join }}",
 "{{ 'x' | default('d') }} {{ '' | default('d') }} {{ '' | default('d', true) }} {{ nothing | d('dd') }}",
 "{{ messages | reverse | map(attribute='role') | list }} {{ [3,1,2] | unique | list }}",
 "{% for m in messages if m.role != 'system' %}{{ loop.index }}/{{ loop.length }} {% else %}empty{% endfor %}",
 "{% for m in [] %}x{% else %}empty{% endfor %}",
]


def token_text(t):
    if isinstance(t, dict):
        return t.get("content")
    return t


def render(tpl, conv, gen, bos, eos):
    kw = {}
    if bos is not None:
        kw["bos_token"] = bos
    if eos is not None:
        kw["eos_token"] = eos
    has_gen = bool(re.search(r"\{\%-?\s*generation\s*-?\%\}", tpl))
    try:
        out, idx = render_jinja_template(conversations=[conv], chat_template=tpl, add_generation_prompt=gen,
                                         return_assistant_tokens_mask=has_gen, **kw)
        res = {"expected": out[0]}
        if has_gen and idx:
            res["spans"] = [list(s) for s in idx[0]]
        return res
    except Exception as e:  # raise_exception and template errors
        return {"error": str(e)}


cases = []
templates = {}
for path in sorted(glob.glob(os.path.join(shared, "tokenizers", "*", "tokenizer_config.json"))):
    cfg = json.load(open(path, encoding="utf-8"))
    tpl = cfg.get("chat_template")
    if not isinstance(tpl, str):
        continue
    name = os.path.basename(os.path.dirname(path))
    rel = os.path.relpath(path, shared)
    templates[name] = {"shared": rel}
    for ci, conv in enumerate(CONVERSATIONS):
        for gen in (False, True):
            cases.append({"template": name, "conversation": ci, "add_generation_prompt": gen,
                          **render(tpl, conv, gen, token_text(cfg.get("bos_token")), token_text(cfg.get("eos_token")))})
for name, tpl in BUILTIN.items():
    bos, eos = BUILTIN_TOKENS[name]
    templates["builtin:" + name] = {"source": tpl, "bos_token": bos, "eos_token": eos}
    for ci, conv in enumerate(CONVERSATIONS):
        for gen in (False, True):
            cases.append({"template": "builtin:" + name, "conversation": ci, "add_generation_prompt": gen,
                          **render(tpl, conv, gen, bos, eos)})
for name, tpl in OWN.items():
    bos, eos = ("<s>", "</s>") if name.endswith("_like") else (None, None)
    templates["own:" + name] = {"source": tpl, "bos_token": bos, "eos_token": eos}
    for ci, conv in enumerate(CONVERSATIONS):
        for gen in (False, True):
            cases.append({"template": "own:" + name, "conversation": ci, "add_generation_prompt": gen,
                          **render(tpl, conv, gen, bos, eos)})

snippets = []
for tpl in SNIPPETS:
    r = render(tpl, CONVERSATIONS[3], True, "<s>", "</s>")
    snippets.append({"source": tpl, **r})

out = {"conversations": CONVERSATIONS, "templates": templates, "cases": cases, "snippets": snippets}
with open(os.path.join(root, "tests/fixtures/chat/chat_templates.json"), "w", encoding="utf-8") as f:
    json.dump(out, f, ensure_ascii=False, indent=1)
    f.write("\n")
print(len(cases), "cases,", sum("error" in c for c in cases), "errors")
