/*
 * The cache protocol of docs/decisions.md ("The protocol model"), for spin.
 *
 * Two instances (0 = A, 1 = B) share one Redis and one database. One key, depending on
 * one tag. The database row holds a value that every write raises by one (so "fresher"
 * is ">="); the outbox holds one row per write (MAXW of them), each applied or not.
 *
 * Versions: 0 = unknown; 1..63 come from Redis; LOCAL.. are handed out by an instance
 * while Redis is down (never equal to a Redis one, always replaced by a merge).
 *
 * Invariants, asserted where a value is served (SERVE):
 *   RYW   the value is at least the last one this instance's writes answered with before
 *         the read started (read-your-writes on the writer, SPEC 6.7);
 *   EVENT if the system was healed and drained when the read started (Redis up and
 *         accepting writes, both broadcast subscriptions alive and known to be, no
 *         broadcast in flight, every outbox row applied), the value is at least the
 *         database's value at that moment (SPEC 6.8's "once writes stop, every read
 *         equals the database").
 *
 * Mutants (-D on spin's command line; one source):
 *   NO_VERSION_CHECK  a memcache-style cache: an invalidation deletes the entry, a fill
 *                     is unconditional, a read serves whatever entry it finds (no stamps)
 *   NO_PENDING        a pending tag blocks nothing and is merged back from Redis
 *   NO_FLUSH          no L1/view flush when the broadcast is lost or (re)connected
 *   NO_STARTUP_SCAN   a restarted instance does not mark the unapplied rows pending
 *                     before it serves (not in the test: needs two faults, too big)
 *   PENDING_BY_TAG    pending marks are a set of tags (as the engine kept them before
 *                     cache/pending.py made them per invalidation):
 *                     clearing after a bump clears the tag, whichever writes it covered
 *                     (not in the test: no counterexample within the bounds that fit)
 *   PENDING_AT_REPLY  an L2 entry's pending check is made when the read's reply is
 *                     handled only (as _accept_l2 did), not also when the read started
 *   PENDING_BLOCKS_BROADCAST  a broadcast for a pending tag is dropped, not merged: the
 *                     newer version it carried is lost, and when the mark clears the
 *                     bump's own (older) result is merged: a found design bug (decisions.md)
 *   NO_FLOOR          a broadcast or a bump's own result re-validates a dropped tag
 *                     with any version (max), not only one above every version the view
 *                     held since L1 was last emptied: a found design bug (decisions.md)
 *   STRICT_7A         also assert SPEC 7a literally: no instance serves a value that an
 *                     unapplied outbox row covers
 */

#define NI 2
#ifndef MAXW
#define MAXW 2          /* writes (outbox rows) in a run */
#endif
#ifndef MAXF
#define MAXF 3          /* fault events in a run, then everything heals */
#endif
#ifndef FAULTS
#define FAULTS 31      /* kinds: 1 Redis down, 2 refusing writes, 4 subscription lost,
                          8 restart of A (the writer), 16 restart of B */
#endif
#ifndef WRITERS
#define WRITERS 1       /* instances that run mutations: A, or A and B */
#endif
#ifndef MAXV
#define MAXV (MAXW + 2) /* bumps beyond MAXV - 1 fail as if Redis refused the write (a
                           behaviour Redis has anyway): bounds the versions */
#endif
#define LOCAL 64
#ifndef MAXLC
#define MAXLC 1         /* local versions per process life */
#endif
#define ALL ((1 << nrows) - 1)

/* database */
byte db = 0;
byte nrows = 0;
byte applied = 0;       /* bit r: outbox row r applied */
byte settled = 0;       /* bit r: row r's writer answered or died: the relay's to apply
                           (a relay applies rows older than a grace period; that a relay
                           may also race a slow writer only adds a harmless extra bump) */

/* Redis */
bool up = true;         /* reachable */
bool rw = true;         /* accepting writes (not full, not read-only) */
byte rver = 1;          /* the tag's version */
byte rent_val = 0;      /* the key's entry: value and recorded version (0: none) */
byte rent_ver = 0;
bool link[NI];          /* the instance's subscription is alive at Redis */
byte inbox[NI];         /* broadcast sent, not yet handled: the highest version (merges
                           take the max, so later messages subsume earlier ones) */

/* instances */
byte gen[NI];           /* bumped by a restart: the process's operations in flight die */
byte view[NI];
byte flo[NI];           /* see MERGE */
byte pend[NI];          /* bit r: outbox row r pending here */
byte l1_val[NI];
byte l1_ver[NI];        /* 0: empty */
bool busy[NI];          /* the instance's reader has an operation in flight */
bool dirty[NI];         /* the epoch moved since that operation began (else false) */
bool conn[NI];          /* the instance believes its subscription alive */
byte cursor[NI];        /* outbox polling position */
byte lc[NI];            /* local versions handed out */
byte lastw[NI];         /* value of the last write this instance answered */

#ifdef NO_PENDING
#define PENDING(i) false
#else
#define PENDING(i) (pend[i] != 0)
#endif

#ifdef PENDING_BY_TAG
#define CLEAR(i, S) pend[i] = 0
#else
#define CLEAR(i, S) pend[i] = pend[i] & ~(S)
#endif

/* Redis versions only grow; a local version always gives way. MERGE is for a Redis read
 * that started after the tag's last drop and with no pending mark on it (the epoch and
 * pstart guards): what it read is at least as new as every invalidation this instance
 * knows of. flo[i] is the highest version the view held since L1 was last emptied, so
 * every L1 stamp is <= flo[i]. */
#define MERGE(i, x) \
  if \
  :: view[i] == 0 || view[i] >= LOCAL || x > view[i] -> view[i] = x \
  :: else -> skip \
  fi; \
  if :: x < LOCAL && x > flo[i] -> flo[i] = x :: else -> skip fi

/* A version of unknown age (a broadcast, a bump's own result): it may re-validate a
 * dropped tag only if it is above every version the view has held (then no L1 entry
 * carries it); else, for a dropped or pending tag, it is ignored. NO_FLOOR: merged like
 * a fresh read (max), a pending tag excepted. */
#ifdef NO_FLOOR
#define MERGE_LATE(i, x) if :: !PENDING(i) -> MERGE(i, x) :: else -> skip fi
#else
#define MERGE_LATE(i, x) \
  if \
  :: x > flo[i] -> flo[i] = x; if :: !PENDING(i) -> view[i] = x :: else -> skip fi \
  :: else -> if :: view[i] != 0 && view[i] < LOCAL && x > view[i] -> view[i] = x :: else -> skip fi \
  fi
#endif

/* The local half of an invalidation: drop the tag from the view, bump the epoch. */
#define DROP(i) view[i] = 0; dirty[i] = busy[i]

#define FLUSH(i) view[i] = 0; flo[i] = 0; l1_ver[i] = 0; l1_val[i] = 0; dirty[i] = busy[i]

#define HEALED (up && rw && link[0] && link[1] && conn[0] && conn[1] \
  && inbox[0] == 0 && inbox[1] == 0 && applied == ALL)

/* One INVALIDATE script: INCR and PUBLISH to every live subscription, or nothing. */
#ifdef NO_VERSION_CHECK
#define DELETE_ENTRY rent_ver = 0
#else
#define DELETE_ENTRY skip
#endif
#define BUMP(ok, nv) \
  if \
  :: up && rw && rver < MAXV -> \
     rver++; nv = rver; DELETE_ENTRY; \
     if :: link[0] -> inbox[0] = nv :: else -> skip fi; \
     if :: link[1] -> inbox[1] = nv :: else -> skip fi; \
     ok = true \
  :: else -> ok = false \
  fi

/* A restart killed the process this operation ran in: abandon it. RESET is per proctype. */
#define ALIVE(i, g, out) if :: gen[i] != g -> RESET; goto out :: else -> skip fi

#ifdef STRICT_7A
#define SERVE_7A(x) assert(applied == ALL || x >= db)
#else
#define SERVE_7A(x) skip
#endif

#define SERVE(x) assert(x >= need1); assert(x >= need2); SERVE_7A(x)

/* The lowest outbox row not applied (where polling must start to see it). */
#define FIRST_UNAPPLIED(c) \
  c = 0; \
  do \
  :: c < nrows && (applied & (1 << c)) -> c++ \
  :: else -> break \
  od

/* Locals are zeroed when an operation ends: states differing only in dead locals merge. */
#define RESET_R g = 0; need1 = 0; need2 = 0; cv = 0; ev = 0; eva = 0; v = 0; val = 0; \
  fromredis = false; pstart = false; busy[i] = false; dirty[i] = false

#define RESET RESET_R
proctype Reader(byte i) {
  byte g, need1, need2, cv, ev, eva, v, val;
  bool fromredis, pstart;
end_top:
  do
  :: atomic {
       g = gen[i]; need1 = lastw[i];
       if :: HEALED -> need2 = db :: else -> need2 = 0 fi;
       busy[i] = true; pstart = PENDING(i);
       if
       :: l1_ver[i] != 0 && l1_ver[i] == view[i] && !PENDING(i) ->
          val = l1_val[i]; SERVE(val); RESET_R; goto end_top     /* L1 hit */
       :: else -> skip
       fi;
       /* the READ script: entry and current version in one step (or Redis is down) */
       if
       :: up -> ev = rent_ver; eva = rent_val; cv = rver; fromredis = true
       :: else -> fromredis = false
       fi
     }
     atomic {           /* the reply, handled later */
       ALIVE(i, g, end_top);
       if
       :: fromredis ->
          if :: !dirty[i] && !PENDING(i) && !pstart -> MERGE(i, cv) :: else -> skip fi;
          if
#ifdef NO_VERSION_CHECK
          :: ev != 0 && !PENDING(i) ->
#else
#ifdef PENDING_AT_REPLY
          :: ev != 0 && ev == cv && !PENDING(i) ->
#else
          :: ev != 0 && ev == cv && !PENDING(i) && !pstart ->
#endif
#endif
             if   /* L2 hit: fill L1 */
             :: !dirty[i] && view[i] == cv && !PENDING(i) -> l1_val[i] = eva; l1_ver[i] = cv
             :: else -> skip
             fi;
             val = eva; SERVE(val); RESET_R; goto end_top
          :: else -> v = cv; ev = 0; eva = 0; cv = 0; pstart = false
          fi
       :: else ->       /* Redis down: versions from the view */
          if
          :: PENDING(i) -> v = 0
          :: !PENDING(i) && view[i] != 0 -> v = view[i]
          :: !PENDING(i) && view[i] == 0 && lc[i] < MAXLC -> lc[i]++; v = LOCAL + lc[i]; view[i] = v
          :: else -> v = 0
          fi;
          pstart = false
       fi
     }
     atomic { ALIVE(i, g, end_top); val = db }          /* the loader reads the database */
     atomic {           /* L1 fill (epoch and view), then the FILL script; then answer */
       ALIVE(i, g, end_top);
       if
       :: v != 0 && !dirty[i] && view[i] == v && !PENDING(i) -> l1_val[i] = val; l1_ver[i] = v
       :: else -> skip
       fi;
       if
#ifdef NO_VERSION_CHECK
       :: fromredis && !PENDING(i) && up && rw -> rent_val = val; rent_ver = v
#else
       :: fromredis && !PENDING(i) && up && rw && rver == v -> rent_val = val; rent_ver = v
#endif
       :: else -> skip
       fi;
       SERVE(val); RESET_R
     }
  od
}

#undef RESET
#define RESET g = 0; r = 0; w = 0; nv = 0; ok = false

/* A mutation: the row and its outbox row commit together, then the tag is bumped. */
proctype Writer(byte i) {
  byte g, r, w, nv;
  bool ok;
end_top:
  do
  :: atomic {
       nrows < MAXW -> g = gen[i]; r = nrows; nrows++; db++; w = db;
       pend[i] = pend[i] | (1 << r); DROP(i)    /* then marks its tag pending here */
     }
     atomic { ALIVE(i, g, end_top); BUMP(ok, nv) }
     atomic {
       ALIVE(i, g, end_top);
       if
       :: ok -> CLEAR(i, 1 << r); MERGE_LATE(i, nv);
          applied = applied | (1 << r)
       :: else -> skip
       fi;
       lastw[i] = w;    /* the mutation answers */
       settled = settled | (1 << r);
       RESET
     }
  od
}

#undef RESET
#define RESET g = 0; S = 0; nv = 0; ok = false

/* The relay (applies unapplied outbox rows) and, while the broadcast is lost, the poller.
 * A pass marks what it applies pending here and sends the bump in one step: a read that
 * reaches Redis in between would find the tag pending at its start anyway. */
proctype Relay(byte i) {
  byte g, S, nv, c;
  bool ok;
end_top:
  do
  :: atomic {
       (settled & ~applied) != 0 -> g = gen[i]; S = settled & ~applied;
       pend[i] = pend[i] | S; DROP(i);
       BUMP(ok, nv)
     }
     atomic {
       ALIVE(i, g, end_top);
       if
       :: ok -> CLEAR(i, S); MERGE_LATE(i, nv);
          applied = applied | S
       :: else -> skip
       fi;
       RESET
     }
#ifndef PENDING_BY_TAG
  :: atomic {           /* marks of rows someone else applied */
       (pend[i] & applied) != 0 -> pend[i] = pend[i] & ~applied
     }
#endif
  :: atomic {           /* poll while disconnected: drop what new rows cover */
       !conn[i] && cursor[i] < nrows ->
       DROP(i);
       c = cursor[i];
       do
       :: c < nrows -> if :: !(applied & (1 << c)) -> pend[i] = pend[i] | (1 << c) :: else -> skip fi; c++
       :: else -> break
       od;
       cursor[i] = nrows; c = 0
     }
  od
}

proctype Listener(byte i) {
  byte c;
end_top:
  do
  :: atomic {           /* a broadcast: merged even into a pending tag (see the header) */
       inbox[i] != 0 ->
#ifdef PENDING_BLOCKS_BROADCAST
       if :: !PENDING(i) -> MERGE(i, inbox[i]) :: else -> skip fi;
#else
       MERGE_LATE(i, inbox[i]);
#endif
       inbox[i] = 0
     }
  :: atomic {
       conn[i] && !link[i] -> conn[i] = false; inbox[i] = 0;  /* undelivered: lost */
#ifndef NO_FLUSH
       FLUSH(i);
#endif
       FIRST_UNAPPLIED(c); cursor[i] = c; c = 0
     }
  :: atomic {
       !conn[i] && up -> link[i] = true; conn[i] = true; cursor[i] = 0; inbox[i] = 0;
#ifndef NO_FLUSH
       FLUSH(i)
#else
       skip
#endif
     }
  od
}

#ifdef NO_STARTUP_SCAN
#define STARTUP_SCAN(i) skip
#else
#define STARTUP_SCAN(i) pend[i] = ALL & ~applied
#endif

/* A restart: L1, view, pending marks and connections go; the database and Redis stay. */
#define RESTART(i) \
  settled = ALL; gen[i]++; view[i] = 0; flo[i] = 0; l1_ver[i] = 0; l1_val[i] = 0; pend[i] = 0; dirty[i] = busy[i]; \
  conn[i] = false; link[i] = false; inbox[i] = 0; lc[i] = 0; cursor[i] = nrows; \
  STARTUP_SCAN(i)

proctype Faults() {
  byte n = 0;
  do
  :: n < MAXF ->
     atomic {
       n++;
       if
#if FAULTS & 1
       :: up -> up = false; link[0] = false; link[1] = false   /* down; data kept */
       :: !up -> up = true
#endif
#if FAULTS & 2
       :: rw -> rw = false                                     /* refusing writes */
       :: !rw -> rw = true
#endif
#if FAULTS & 4
       :: link[0] -> link[0] = false                           /* subscription killed */
       :: link[1] -> link[1] = false
#endif
#if FAULTS & 8
       :: RESTART(0)
#endif
#if FAULTS & 16
       :: RESTART(1)
#endif
       fi
     }
  :: atomic { up = true; rw = true; break }
  od
}

init {
  atomic {
    link[0] = true; link[1] = true; conn[0] = true; conn[1] = true;
    run Faults();
    run Reader(0); run Reader(1);
    run Writer(0);
#if WRITERS > 1
    run Writer(1);
#endif
    run Relay(0); run Relay(1);
    run Listener(0); run Listener(1)
  }
}
