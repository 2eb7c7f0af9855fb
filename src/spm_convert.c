/* spm_convert.c — SentencePiece .model (protobuf) → tokenizer.json (placeholder). */
#include "tok_internal.h"
int spm_convert(const char *model_path, const char *out_dir, hone_error *err) {
    return hone_fail(err, "%s: SentencePiece conversion not implemented yet", model_path);
}
