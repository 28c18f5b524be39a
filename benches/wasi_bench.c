/* benches/wasi.py's program: `write N` makes N fd_write calls of 6 bytes to stdout
   (write(2), no stdio buffering); `printf N` prints N lines through stdio; `read N`
   opens, reads and closes a small file in the preopen /data N times. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int main(int argc, char **argv) {
    if (argc < 3) return 64;
    long n = atol(argv[2]);
    if (!strcmp(argv[1], "write")) {
        for (long i = 0; i < n; i++) write(1, "hello\n", 6);
        return 0;
    }
    if (!strcmp(argv[1], "printf")) {  /* stdio: wasi-libc buffers a non-terminal stdout */
        for (long i = 0; i < n; i++) printf("line %ld\n", i);
        return 0;
    }
    if (!strcmp(argv[1], "read")) {
        char buf[128];
        long total = 0;
        for (long i = 0; i < n; i++) {
            int fd = open("/data/small.txt", O_RDONLY);
            if (fd < 0) { perror("open"); return 1; }
            total += read(fd, buf, sizeof buf);
            close(fd);
        }
        printf("%ld\n", total);
        return 0;
    }
    return 64;
}
