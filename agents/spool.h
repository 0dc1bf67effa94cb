/* The agent's state directory: the report sequence number and the
 * on-disk spool of reports the controller has not taken yet
 * (doc/AGENT.md "Reports").
 *
 *   STATE_DIR/seq                  the last sequence number handed out
 *   STATE_DIR/spool/SEQ.json       one report per file, SEQ zero-padded to
 *                                  20 digits so names sort in seq order
 *
 * Every write goes to a temporary file that is fsync'd and renamed, then
 * the directory is fsync'd: a crash leaves the old or the new file, never
 * a torn one.  The spool is bounded in bytes; at the bound the oldest
 * reports are dropped (the newest state is what matters, and the
 * controller applies only reports newer than the last it applied).
 *
 * Backoff: a pure function of the clock value and the attempt count, so
 * tests control time. */
#ifndef YG_AGENT_SPOOL_H
#define YG_AGENT_SPOOL_H 1

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SPOOL_DEFAULT_MAX_BYTES (16u * 1024 * 1024)

struct spool;

/* Open (creating the directories, mode 0700) and scan the spool.  A
 * stray temporary file from a crash is removed.  0 or -errno. */
int spool_open(const char *state_dir, uint64_t max_bytes, struct spool **ret);
void spool_free(struct spool *s);
static inline void spool_freep(struct spool **s) { spool_free(*s); }

/* The next sequence number, persisted before it is returned; it is
 * greater than every spooled report's.  0 or -errno. */
int spool_next_seq(struct spool *s, uint64_t *ret_seq);
/* The last sequence number handed out (0 when none yet). */
uint64_t spool_last_seq(const struct spool *s);
/* Make the next sequence number at least floor + 1 (the controller has
 * seen floor already, e.g. after the state directory was lost). */
int spool_raise_seq(struct spool *s, uint64_t floor);

size_t spool_count(const struct spool *s);
uint64_t spool_bytes(const struct spool *s);

/* Store one report under seq (which must exceed every spooled one).  With
 * replace_last, the newest spooled report is removed once this one is
 * stored (a heartbeat equal to it).  When the bound is passed, the oldest
 * reports are removed; *ret_dropped (may be NULL) tells how many.  A
 * report larger than the bound alone is refused with -EFBIG.  0 or -errno. */
int spool_add(struct spool *s, uint64_t seq, const char *body, size_t len, bool replace_last,
              size_t *ret_dropped);
/* The oldest spooled report.  0, -ENOENT when the spool is empty, or -errno. */
int spool_peek(struct spool *s, uint64_t *ret_seq, char **ret_body, size_t *ret_len);
/* Remove the report with that seq (after the controller took it). */
int spool_remove(struct spool *s, uint64_t seq);
/* Remove the oldest report (one that cannot be read).  0, -ENOENT, -errno. */
int spool_remove_oldest(struct spool *s);

/* Capped exponential backoff: the delay before retry number `attempt`
 * (0 for the first retry) is base_ms * 2^attempt, capped at max_ms, then
 * spread by jitter_permille (0..1000) over [delay/2, delay] so that many
 * agents do not retry in step.  Returns now_ms + that delay. */
uint64_t spool_backoff_deadline(uint64_t now_ms, unsigned attempt, uint64_t base_ms,
                                uint64_t max_ms, unsigned jitter_permille);

#endif
