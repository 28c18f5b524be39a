/* {{name}}: a WASI program in C (wasi-libc), built by `vudo build` with zig cc for
   wasm32-wasi and run by `vudo run` in a capability-checked sandbox.

   A small `wc`: counts lines, words and bytes of each file named on the command line
   (or of stdin with none), like the Unix tool. Files are reachable only inside the
   directories you give it: vudo run --ro-dir ./texts::/texts -- /texts/a.txt */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

struct counts { long lines, words, bytes; };

static int count(FILE *f, struct counts *c) {
    char buf[4096];
    size_t n;
    int in_word = 0;
    while ((n = fread(buf, 1, sizeof buf, f)) > 0) {
        c->bytes += (long)n;
        for (size_t i = 0; i < n; i++) {
            unsigned char ch = (unsigned char)buf[i];
            if (ch == '\n') c->lines++;
            if (isspace(ch)) in_word = 0;
            else if (!in_word) { in_word = 1; c->words++; }
        }
    }
    return ferror(f) ? -1 : 0;
}

static void show(const struct counts *c, const char *name) {
    printf("%7ld %7ld %7ld", c->lines, c->words, c->bytes);
    if (name) printf(" %s", name);
    printf("\n");
}

int main(int argc, char **argv) {
    struct counts total = {0, 0, 0};
    int status = 0;
    if (argc < 2) {
        struct counts c = {0, 0, 0};
        count(stdin, &c);
        show(&c, NULL);
        return 0;
    }
    for (int i = 1; i < argc; i++) {
        FILE *f = fopen(argv[i], "r");
        if (!f) {
            fprintf(stderr, "wc: %s: %s\n", argv[i], strerror(errno));
            status = 1;
            continue;
        }
        struct counts c = {0, 0, 0};
        if (count(f, &c) != 0) {
            fprintf(stderr, "wc: %s: read error\n", argv[i]);
            status = 1;
        }
        fclose(f);
        show(&c, argv[i]);
        total.lines += c.lines;
        total.words += c.words;
        total.bytes += c.bytes;
    }
    if (argc > 2) show(&total, "total");
    return status;
}
