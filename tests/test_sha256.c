/* test_sha256.c — base/sha256 against FIPS 180-4's test vectors (exact digests), fed whole
 * and in uneven pieces. */
#include "base/sha256.h"
#include "test.h"

static void digest_of(const char *msg, size_t n, size_t piece, char hex[65]) {
    hone_sha256 s;
    uint8_t d[32];
    sha256_init(&s);
    for (size_t i = 0; i < n; i += piece) sha256_update(&s, msg + i, n - i < piece ? n - i : piece);
    sha256_final(&s, d);
    sha256_hex(d, hex);
}

static void test_vectors(void) {
    static const struct { const char *msg, *hex; } v[] = {
        {"", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"},
        {"abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"},
        {"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq", "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"},
        {"abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmnopqklmnopqrlmnopqrsmnopqrstnopqrstu",
         "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1"},
    };
    char hex[65];
    for (size_t i = 0; i < sizeof v / sizeof *v; i++)
        for (size_t piece = 1; piece <= 128; piece = piece * 3 + 1) {
            digest_of(v[i].msg, strlen(v[i].msg), piece, hex);
            CHECK(!strcmp(hex, v[i].hex), "vector %zu in pieces of %zu: %s", i, piece, hex);
        }
}

static void test_million_a(void) {
    char *a = malloc(1000000);
    memset(a, 'a', 1000000);
    char hex[65];
    digest_of(a, 1000000, 4093, hex);
    CHECK(!strcmp(hex, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0"), "one million 'a': %s", hex);
    free(a);
}

int main(void) {
    TEST_RUN(test_vectors);
    TEST_RUN(test_million_a);
    return test_finish();
}
