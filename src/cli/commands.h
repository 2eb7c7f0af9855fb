/* cli/ — the `hone` program: main.c, one cmd_*.c per command (this header lists
 *   them), and gen_cli.h, what the generating commands share (options, loading a model
 *   with its tokenizer and template). The top: may include every folder; nothing
 *   includes it but main.c and the tests.
 *
 * cli/commands.h — one entry point per CLI command, each in its own cli/cmd_*.c.
 * argv[0] is the command name; returns the process exit status. */
#ifndef HONE_COMMANDS_H
#define HONE_COMMANDS_H
int cmd_info(int argc, char **argv);
int cmd_convert(int argc, char **argv);
int cmd_init(int argc, char **argv);
int cmd_sft(int argc, char **argv);
int cmd_dpo(int argc, char **argv);
int cmd_tokenize(int argc, char **argv);
int cmd_generate(int argc, char **argv);
int cmd_chat(int argc, char **argv);
int cmd_compare(int argc, char **argv);
int cmd_eval(int argc, char **argv);
int cmd_report(int argc, char **argv);
int cmd_merge(int argc, char **argv);
int cmd_estimate(int argc, char **argv);
int cmd_export(int argc, char **argv);
int cmd_import(int argc, char **argv);
#endif
