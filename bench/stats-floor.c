// The least work any daemonless `stats --no-stream` does on a v1/hybrid host, as a
// yardstick for oxcart's (docs/benchmarks.md, "stats ... the floor"): for each
// directory under <root>/containers, the monitor's state files oxcart reads
// (monitor.json, then exit.json and restart.json, usually absent) and the five
// cgroup files of docker's columns, each opened relative to its parent directory
// and read once. No database, no names, no table: one line per running container.
//
//   gcc -O2 -static -o /tmp/stats-floor bench/stats-floor.c
//   /tmp/stats-floor <oxcart --root>     (timed like `stats` in bench/engine.py)
#define _GNU_SOURCE
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

// openat + one read + close; -1 if the file cannot be opened.
static long read_at(int dir, const char *rel, char *buf, size_t n) {
    int fd = openat(dir, rel, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return -1;
    long r = read(fd, buf, n - 1);
    close(fd);
    if (r >= 0) buf[r] = 0;
    return r;
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: %s ROOT\n", argv[0]);
        return 2;
    }
    static const char *ctl[4] = {"cpuacct", "memory", "pids", "blkio"};
    char path[4096], buf[8192], rel[512];
    int cg[4];
    for (int i = 0; i < 4; i++) {
        snprintf(path, sizeof path, "/sys/fs/cgroup/%s/oxcart", ctl[i]);
        cg[i] = open(path, O_PATH | O_DIRECTORY | O_CLOEXEC);
    }
    snprintf(path, sizeof path, "%s/containers", argv[1]);
    int ctrs = open(path, O_PATH | O_DIRECTORY | O_CLOEXEC);
    DIR *d = opendir(path);
    if (ctrs < 0 || !d) {
        perror(path);
        return 1;
    }
    struct dirent *e;
    while ((e = readdir(d))) {
        const char *id = e->d_name;
        if (id[0] == '.') continue;
        snprintf(rel, sizeof rel, "%s/monitor.json", id);
        if (read_at(ctrs, rel, buf, sizeof buf) < 0) continue;
        snprintf(rel, sizeof rel, "%s/exit.json", id);
        if (read_at(ctrs, rel, buf, sizeof buf) >= 0) continue;
        snprintf(rel, sizeof rel, "%s/restart.json", id);
        read_at(ctrs, rel, buf, sizeof buf);
        unsigned long long cpu = 0, mem = 0, pids = 0;
        snprintf(rel, sizeof rel, "%s/cpuacct.usage", id);
        if (read_at(cg[0], rel, buf, sizeof buf) > 0) cpu = strtoull(buf, 0, 10);
        snprintf(rel, sizeof rel, "%s/memory.usage_in_bytes", id);
        if (read_at(cg[1], rel, buf, sizeof buf) > 0) mem = strtoull(buf, 0, 10);
        snprintf(rel, sizeof rel, "%s/memory.stat", id);
        read_at(cg[1], rel, buf, sizeof buf);
        snprintf(rel, sizeof rel, "%s/pids.current", id);
        if (read_at(cg[2], rel, buf, sizeof buf) > 0) pids = strtoull(buf, 0, 10);
        snprintf(rel, sizeof rel, "%s/blkio.throttle.io_service_bytes_recursive", id);
        read_at(cg[3], rel, buf, sizeof buf);
        printf("%.12s %llu %llu %llu\n", id, cpu, mem, pids);
    }
    return 0;
}
