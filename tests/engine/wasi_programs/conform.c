/* WASI preview1 conformance probe: one program, one family per first argument.
   Built with `python -m ziglang cc --target=wasm32-wasi` (wasi-libc) by the tests,
   which run it under vudo and under raw wasmtime-py WASI and compare the output. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

static int cmp(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static void show(const char *what, int rc) {
    printf("%s: %s\n", what, rc == 0 ? "ok" : strerror(errno));
}

static int args(int argc, char **argv) {
    printf("argc=%d\n", argc);
    for (int i = 1; i < argc; i++) printf("[%s]\n", argv[i]);
    return 0;
}

static int env(void) {
    int n = 0;
    for (char **e = environ; *e; e++) n++;
    printf("count=%d\n", n);
    for (char **e = environ; *e; e++) printf("%s\n", *e);
    const char *foo = getenv("FOO");
    printf("FOO=%s\n", foo ? foo : "(unset)");
    return 0;
}

static int streams(void) {
    printf("to stdout\n");
    fflush(stdout);
    fprintf(stderr, "to stderr\n");
    fwrite("raw\0bytes\n", 1, 10, stdout);
    return 0;
}

static int input(void) {
    char buf[256];
    size_t total = 0, n;
    while ((n = fread(buf, 1, sizeof buf, stdin)) > 0) {
        fwrite(buf, 1, n, stdout);
        total += n;
    }
    printf("\nread %zu bytes\n", total);
    return 0;
}

static int clocks(void) {
    struct timespec a, b, r;
    int ok = clock_gettime(CLOCK_REALTIME, &a) == 0 && a.tv_sec > 1600000000;
    printf("realtime: %s\n", ok ? "plausible" : strerror(errno));
    clock_gettime(CLOCK_MONOTONIC, &a);
    clock_gettime(CLOCK_MONOTONIC, &b);
    printf("monotonic: %s\n",
           (b.tv_sec > a.tv_sec || (b.tv_sec == a.tv_sec && b.tv_nsec >= a.tv_nsec)) ? "ok" : "backwards");
    printf("res: %s\n", clock_getres(CLOCK_MONOTONIC, &r) == 0 && (r.tv_sec || r.tv_nsec) ? "ok" : "bad");
    struct timespec nap = {0, 20 * 1000 * 1000};
    clock_gettime(CLOCK_MONOTONIC, &a);
    nanosleep(&nap, NULL);
    clock_gettime(CLOCK_MONOTONIC, &b);
    long long slept = (b.tv_sec - a.tv_sec) * 1000000000LL + (b.tv_nsec - a.tv_nsec);
    printf("sleep 20ms: %s\n", slept >= 19000000LL ? "ok" : "short");
    printf("sched_yield: %d\n", sched_yield());
    return 0;
}

static int randomness(void) {
    unsigned char a[32], b[32];
    if (getentropy(a, sizeof a) != 0 || getentropy(b, sizeof b) != 0) {
        printf("getentropy: %s\n", strerror(errno));
        return 1;
    }
    printf("getentropy: %s\n", memcmp(a, b, sizeof a) ? "ok" : "repeats");
    return 0;
}

static int files(const char *root) {
    char path[512];
    snprintf(path, sizeof path, "%s/sub", root);
    show("mkdir", mkdir(path, 0755));
    snprintf(path, sizeof path, "%s/sub/a.txt", root);
    FILE *f = fopen(path, "w");
    if (!f) { printf("fopen w: %s\n", strerror(errno)); return 1; }
    fputs("hello file\nsecond line\n", f);
    fclose(f);
    f = fopen(path, "a");
    fputs("appended\n", f);
    fclose(f);
    struct stat st;
    show("stat", stat(path, &st));
    printf("size=%lld regular=%d\n", (long long)st.st_size, S_ISREG(st.st_mode));
    int fd = open(path, O_RDWR);
    char buf[64] = {0};
    printf("pread=%zd ", pread(fd, buf, 5, 6));
    printf("[%s]\n", buf);
    printf("lseek end=%lld\n", (long long)lseek(fd, 0, SEEK_END));
    printf("pwrite=%zd\n", pwrite(fd, "HELLO", 5, 0));
    show("ftruncate", ftruncate(fd, 20));
    close(fd);
    f = fopen(path, "r");
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    buf[n] = 0;
    fclose(f);
    printf("content=[%s]\n", buf);
    snprintf(path, sizeof path, "%s/sub/b.txt", root);
    char from[512];
    snprintf(from, sizeof from, "%s/sub/a.txt", root);
    show("rename", rename(from, path));
    char link[512];
    snprintf(link, sizeof link, "%s/sub/link", root);
    show("symlink", symlink("b.txt", link));
    char target[64] = {0};
    printf("readlink=%zd [%s]\n", readlink(link, target, sizeof target - 1), target);
    f = fopen(link, "r");
    printf("via link: %s\n", f ? "opened" : strerror(errno));
    if (f) fclose(f);
    snprintf(path, sizeof path, "%s/sub", root);
    DIR *d = opendir(path);
    char *names[16];
    int count = 0;
    struct dirent *e;
    while (d && (e = readdir(d)) && count < 16)
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) names[count++] = strdup(e->d_name);
    if (d) closedir(d);
    qsort(names, count, sizeof names[0], cmp);
    for (int i = 0; i < count; i++) printf("entry %s\n", names[i]);
    show("unlink link", unlink(link));
    show("rmdir nonempty", rmdir(path));
    show("open missing", open("missing-file", O_RDONLY) < 0 ? -1 : 0);
    snprintf(path, sizeof path, "%s/missing", root);
    show("open missing", open(path, O_RDONLY) < 0 ? -1 : 0);
    snprintf(path, sizeof path, "%s/sub/b.txt", root);
    show("open excl", open(path, O_CREAT | O_EXCL | O_WRONLY, 0644) < 0 ? -1 : 0);
    show("unlink", unlink(path));
    snprintf(path, sizeof path, "%s/sub", root);
    show("rmdir", rmdir(path));
    return 0;
}

static int escapes(const char *root) {
    char path[512];
    snprintf(path, sizeof path, "%s/../outside.txt", root);
    printf("dotdot: %s\n", open(path, O_RDONLY) < 0 ? "refused" : "OPENED");
    snprintf(path, sizeof path, "%s/inner/../../outside.txt", root);
    printf("dotdot deep: %s\n", open(path, O_RDONLY) < 0 ? "refused" : "OPENED");
    printf("absolute: %s\n", open("/etc/passwd", O_RDONLY) < 0 ? "refused" : "OPENED");
    snprintf(path, sizeof path, "%s/uplink/outside.txt", root);
    printf("symlink out: %s\n", open(path, O_RDONLY) < 0 ? "refused" : "OPENED");
    snprintf(path, sizeof path, "%s/abslink", root);
    printf("absolute symlink: %s\n", open(path, O_RDONLY) < 0 ? "refused" : "OPENED");
    snprintf(path, sizeof path, "%s/made", root);
    symlink("../outside.txt", path);
    printf("made symlink out: %s\n", open(path, O_RDONLY) < 0 ? "refused" : "OPENED");
    unlink(path);
    return 0;
}

int main(int argc, char **argv) {
    if (argc < 2) { fprintf(stderr, "usage: conform FAMILY [ARGS]\n"); return 64; }
    const char *family = argv[1];
    if (!strcmp(family, "args")) return args(argc, argv);
    if (!strcmp(family, "env")) return env();
    if (!strcmp(family, "exit")) return atoi(argc > 2 ? argv[2] : "0");
    if (!strcmp(family, "streams")) return streams();
    if (!strcmp(family, "stdin")) return input();
    if (!strcmp(family, "clocks")) return clocks();
    if (!strcmp(family, "random")) return randomness();
    if (!strcmp(family, "files")) return files(argc > 2 ? argv[2] : "/data");
    if (!strcmp(family, "escapes")) return escapes(argc > 2 ? argv[2] : "/data");
    fprintf(stderr, "unknown family %s\n", family);
    return 64;
}
