//go:build linux && cgo

package userns

// Stage 1 in C: a child mcpbox started in its user namespace only waits
// until its ids are mapped and executes itself again. Done by Continue, the
// wait would come after the Go runtime and every package of mcpbox had
// initialised — tens of milliseconds of work that the exec then throws
// away, on the path of every rootless session's start. A constructor runs
// before all of that, as runc's nsexec does. The protocol is Continue's:
// the same variable, the same pipe, the same exit status on failure.

/*
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

extern char **environ;

// stage1Ids returns the "UID:GID" part of a stage-1 value ("1:UID:GID"),
// or NULL for any other value, which Continue then handles as Go would.
static const char *stage1Ids(const char *v) {
	if (v == NULL || v[0] != '1' || v[1] != ':') {
		return NULL;
	}
	const char *ids = v + 2, *p = ids;
	int fields = 0;
	for (;;) {
		const char *start = p;
		while (*p >= '0' && *p <= '9') {
			p++;
		}
		if (p == start) {
			return NULL;
		}
		fields++;
		if (*p == '\0') {
			return fields == 2 ? ids : NULL;
		}
		if (*p != ':' || fields == 2) {
			return NULL;
		}
		p++;
	}
}

// readCmdline returns this process's argv from /proc/self/cmdline, which
// a constructor cannot take as arguments on every libc.
static char **readCmdline(void) {
	int fd = open("/proc/self/cmdline", O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		return NULL;
	}
	size_t cap = 4096, len = 0;
	char *buf = malloc(cap + 1);
	for (;;) {
		if (buf == NULL) {
			close(fd);
			return NULL;
		}
		ssize_t n = read(fd, buf + len, cap - len);
		if (n < 0 && errno == EINTR) {
			continue;
		}
		if (n < 0) {
			close(fd);
			free(buf);
			return NULL;
		}
		if (n == 0) {
			break;
		}
		len += n;
		if (len == cap) {
			cap *= 2;
			buf = realloc(buf, cap + 1);
		}
	}
	close(fd);
	buf[len] = '\0';
	size_t argc = 0;
	for (size_t i = 0; i < len; i++) {
		if (buf[i] == '\0') {
			argc++;
		}
	}
	char **argv = calloc(argc + 1, sizeof(char *));
	if (argv == NULL) {
		return NULL;
	}
	char *p = buf;
	for (size_t i = 0; i < argc; i++) {
		argv[i] = p;
		p += strlen(p) + 1;
	}
	return argv;
}

// freshNamespace reports whether this process is the child Reexec
// started: its uid_map is still empty, or already the map Reexec writes
// for uid (id 0 on uid, ids 1 and 2 subordinate). Anywhere else the stage
// variable is dropped, not obeyed (as Continue does).
static int freshNamespace(long uid) {
	int fd = open("/proc/self/uid_map", O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		return 0;
	}
	char buf[256];
	ssize_t n;
	do {
		n = read(fd, buf, sizeof buf - 1);
	} while (n < 0 && errno == EINTR);
	close(fd);
	if (n < 0) {
		return 0;
	}
	buf[n] = '\0';
	if (n == 0) {
		return 1;
	}
	long a0, b0, c0, a1, b1, c1;
	char rest;
	if (sscanf(buf, " %ld %ld %ld %ld %ld %ld %c", &a0, &b0, &c0, &a1, &b1, &c1, &rest) != 6) {
		return 0;
	}
	return uid != 0 && a0 == 0 && b0 == uid && c0 == 1 && a1 == 1 && c1 == 2;
}

__attribute__((constructor)) static void mcpboxUsernsStage1(void) {
	const char *ids = stage1Ids(getenv("MCPBOX_USERNS_STAGE"));
	if (ids == NULL) {
		return;
	}
	if (!freshNamespace(strtol(ids, NULL, 10))) {
		unsetenv("MCPBOX_USERNS_STAGE");
		return;
	}
	char b;
	ssize_t n;
	do {
		n = read(3, &b, 1);
	} while (n < 0 && errno == EINTR);
	if (n != 1) {
		_exit(125); // the parent said why
	}
	close(3);
	char **argv = readCmdline();
	if (argv == NULL || argv[0] == NULL) {
		fprintf(stderr, "mcpbox: rootless: read /proc/self/cmdline: %s\n", strerror(errno));
		_exit(125);
	}
	char stage[64];
	if (snprintf(stage, sizeof stage, "MCPBOX_USERNS_STAGE=2:%s", ids) >= (int)sizeof stage) {
		_exit(125);
	}
	size_t envc = 0;
	while (environ[envc] != NULL) {
		envc++;
	}
	char **env = calloc(envc + 2, sizeof(char *));
	if (env == NULL) {
		_exit(125);
	}
	size_t j = 0;
	for (size_t i = 0; i < envc; i++) {
		if (strncmp(environ[i], "MCPBOX_USERNS_STAGE=", 20) != 0) {
			env[j++] = environ[i];
		}
	}
	env[j] = stage;
	execve("/proc/self/exe", argv, env);
	fprintf(stderr, "mcpbox: rootless: execute itself in its user namespace: %s\n", strerror(errno));
	_exit(125);
}
*/
import "C"
