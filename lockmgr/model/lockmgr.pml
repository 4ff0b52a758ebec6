/*
 * lockmgr.pml - SPIN model of the lock manager's protocol (lockmgr/*.c):
 * heartbeat slots, one lock record (exclusive / shared), acquire, release,
 * takeover of dead holders with a replay, fencing (lease check before every
 * write, and on a backend that fences, the survivor's PERSISTENT RESERVE
 * PREEMPT before a takeover). N = 3 hosts, each with a main thread and a
 * heartbeat thread; an environment pauses hosts (SIGSTOP, a paused VM, a
 * crash when never resumed), lets their lease expire while paused, resumes
 * them; ATS replies are lost (the write lands, the caller sees an error).
 *
 * Which code each step models: docs/LOCKING.md, "Model check".
 *
 * Abstractions (argued in docs/LOCKING.md):
 *  - time: a host's lease expires, and other hosts may judge its slot dead,
 *    only while it is paused (a running host's heartbeat moves within the
 *    timeout); the taker's T >= the victim's lease T/2 is `expired` being
 *    set before any takeover is enabled; expiry is permanent (the lease
 *    check runs before every heartbeat, so an expired lease never renews);
 *  - the reads of a lock record and of its holders' slots are one step
 *    (staleness is monotone: generations never repeat; everything else is
 *    re-checked by the ATS that follows, which compares whole images);
 *  - torn writes: ATS covers one logical sector, which the device writes
 *    atomically (bdev.h invariant 4), so slot and lock records are never
 *    torn; data writes are modelled as a single landing step whose content
 *    does not matter to the protocol.
 *
 * Configurations (one run each; the same bounds):
 *  base       hosts 0 and 1 write (EX), host 2 reads (SH); all slots LIVE;
 *  -DHANDOVER the hand-over mark: host 0 keeps its lock after its critical
 *             section (libvmfs keep_locks) until the record is marked, and
 *             takes it twice; host 2 (SH) waits and marks (mark_wanted());
 *             host 1 sits out;
 *  -DCONVERT  lm_lock_convert(): host 0 takes EX, writes, downgrades to SH,
 *             releases; host 2 takes SH, upgrades to EX, writes, releases;
 *             host 1 sits out;
 *  -DJOIN     join-time reclaim: slot 2 is LIVE and still (a dead host D,
 *             generation 1) and D holds the lock EX; host 2 has no slot and
 *             joins by lm_join_reclaim() / join_takeover() (REPLAYING by
 *             the slot itself, heartbeat, callback, LIVE, same generation),
 *             then reads (SH); host 1's reclaim thread makes one sweep
 *             (lm_sweep()) at any moment; host 0 sits out.
 *  The waiters' marks are modelled in HANDOVER only; in the others a mark is
 *  one more image change, which every ATS compares (SAME_RECORD).
 *
 * Properties:
 *  P1 (assert in grant): never two incompatible holders among hosts whose
 *     lease is valid (a downgrader stops using EX when it asks);
 *  P2 (assert in DATA_WRITE): no write by a host lands after its slot was
 *     taken over (its slot is not LIVE, or REPLAYING by itself, with its
 *     generation);
 *  P3 (assert in the heartbeat): a host fences itself on a heartbeat
 *     miscompare only when its slot really was taken over (no needless
 *     self-fence after a lost reply);
 *  P4 (end check at `timeout`): no lock leaked: when nothing can move,
 *     every holder named by the lock record is a host that believes it
 *     holds the lock, or a dead one (its slot still: any acquirer takes it
 *     over);
 *  P5 (end check at `timeout`): no host waits forever for a lock (or, JOIN,
 *     for a slot): a lost hand-over, a deadlock, a missed wake-up.
 *  P6 (-DREPLAY_WINDOW only, not run by the test: a known gap, see
 *     docs/LOCKING.md): a replay write lands only while its slot is still
 *     REPLAYING by the writer, or is refused.
 *
 * Mutants (the ctest test runs them and requires a violation, to prove the
 * check can fail): -DNO_PREEMPT (a backend without fencing: the residual
 * window of docs/LOCKING.md, P2 fails); -DNO_REREAD (ATS errors taken as
 * failures, the old code of issue 9 defect 3: P4 or P3 fails);
 * -DMARK_ONCE with HANDOVER (a waiter marks once per acquire instead of
 * once per unmarked image: after the keeper takes the lock again it is
 * never asked, P5); -DCONV_NOWAIT with CONVERT (an upgrade skips the check
 * of the other holders, P1); -DJOIN_OLDGEN with JOIN (the reclaimed slot
 * goes LIVE with the dead owner's generation: D's holder entry becomes the
 * joiner's, whose acquire then fails -EALREADY and leaves it, P4).
 */
#define N 3
#ifndef LOSTMAX
#define LOSTMAX 1
#endif
#ifndef PAUSEMAX
#define PAUSEMAX 2
#endif
#ifndef HBMAX
#define HBMAX 1 /* heartbeats per host: enough to move a slot and to lose a reply */
#endif

#define S_FREE 0
#define S_LIVE 1
#define S_REPL 2
#define M_FREE 0
#define M_EX 1
#define M_SH 2

/* heartbeat slot i (one per host: slot index = host id) */
byte sst[N];   /* state */
byte sgen[N];  /* slot generation */
bit scnt[N];   /* heartbeat counter (mod 2: only movement matters) */
byte sdead[N]; /* REPLAYING: dead generation */
byte sby[N];   /* REPLAYING: replayer host */
byte sbygen[N];

/* the lock record */
byte lmode;
bit lhold[N];
byte lhgen[N];
byte lgen;
byte lwant;    /* HANDOVER: the wanted field (0, or the marking host + 1) */

/* host state */
bit paused[N];
bit expired[N];   /* lease gone (paused past T/2); judged dead by others */
bit preempted[N]; /* its registration preempted: the disk rejects its writes */
bit fenced[N];
bit done[N];
byte holds[N];    /* what the host believes it holds: M_FREE / M_EX / M_SH */
byte mygen[N];
bit mycnt[N];     /* heartbeat counter of its cached slot image */
byte nlost;
byte npause;
bit hbon[N];      /* heartbeat thread running (lm_hb_start() / lm_hb_stop()) */
bit hbl[N];       /* JOIN: a heartbeat's lost reply not yet resolved */
#ifdef JOIN /* lm_hb_stop() waits for it; a local keeps partial-order reduction */
#define HBLOST hbl[i]
#else
#define HBLOST lost
#endif
bit swept;        /* JOIN: host 1's reclaim thread finished its sweep */
bit waiting[N];   /* in the busy wait (P5); a function of the pc: no states */

#define GUARD(i) if :: expired[i] -> fenced[i] = 1; goto out :: else -> skip fi
#define LOSE(l) if :: nlost < LOSTMAX -> nlost++; l = 1 :: true -> l = 0 fi
#define NAMED(i) (lhold[i] && lhgen[i] == mygen[i])
/* slot i is host i's own: LIVE, or (JOIN) REPLAYING by itself, with its
 * generation (slot_still_ours(): state, generation, owner) */
#define OWN(i) (sgen[i] == mygen[i] && (sst[i] == S_LIVE || (sst[i] == S_REPL && sby[i] == i)))
/* slot k's image is still for T: its host's lease expired, or nobody
 * heartbeats it (JOIN: slot 2 of the dead host D, generation 1) */
#define STILL(k) (expired[k] || sgen[k] != mygen[k])
/* the record is the image the step read (an ATS compares all of it) */
#define SAME_RECORD                                                            \
	(lmode == smode && lgen == slgen && lwant == swant && lhold[0] == sh[0] && \
	 lhold[1] == sh[1] && lhold[2] == sh[2] && lhgen[0] == shg[0] &&           \
	 lhgen[1] == shg[1] && lhgen[2] == shg[2])

#ifdef CONV_NOWAIT
#define CHECKED (ph == 0) /* mutant: a conversion skips the holder check */
#else
#define CHECKED 1
#endif

/* lm_pr_preempt(slot k, dead generation g): the key of the host that
 * held slot k with generation g (none for D, which has no write in flight) */
#ifdef NO_PREEMPT
#define PREEMPT(k, g) skip
#else
#define PREEMPT(k, g) if :: g == mygen[k] -> preempted[k] = 1 :: else -> skip fi
#endif

/* lm_guarded_write()'s bdev_write() landing (issued after the guard passed;
 * a pause may sit between the two steps) */
#define DATA_WRITE(i)                                                          \
	if                                                                     \
	:: preempted[i] -> skip /* RESERVATION CONFLICT */                     \
	:: else -> assert(OWN(i)) /* P2 */                                     \
	fi

proctype heartbeat(byte i)
{
	bit lost;
	byte nb;
	do
	:: done[i] || fenced[i] || nb == HBMAX -> break
	:: atomic {
		!paused[i] && hbon[i] && !done[i] && !fenced[i] && nb < HBMAX;
		nb++;
		GUARD(i);
		if
		:: OWN(i) && scnt[i] == mycnt[i] ->
			scnt[i] = 1 - scnt[i];
			LOSE(HBLOST);
			if
			:: !HBLOST -> mycnt[i] = scnt[i]
			:: else -> skip /* reply lost: hb_ats() re-reads below */
			fi
		:: else ->
#ifndef NO_REREAD
			/* miscompare: hb_ats() re-reads; still ours: adopt */
			if
			:: OWN(i) -> mycnt[i] = scnt[i]
			:: else -> assert(!OWN(i)); fenced[i] = 1
			fi
#else
			assert(!OWN(i)); /* P3 */
			fenced[i] = 1
#endif
		fi
	   }
#ifndef NO_REREAD
	   if
	   :: HBLOST -> atomic { !paused[i]; if :: OWN(i) -> mycnt[i] = scnt[i] :: else -> skip fi; HBLOST = 0 }
	   :: else -> skip
	   fi
#else
	   HBLOST = 0
#endif
	od;
out:
	skip
}

proctype host(byte i)
{
	byte want, k, dj, vst, vgen, busy, smode, slgen, swant;
	bit vcnt, lost, sh[N], ph, domark, marked, again;
	byte shg[N];
#ifdef JOIN
	byte sss[N]; /* the holders' slot states a waiter saw */
#endif

	want = (i == 2 -> M_SH : M_EX); /* two writers and a reader */
#if defined(CONVERT) || defined(HANDOVER)
	if /* host 1 sits out (a live slot): two active hosts */
	:: i == 1 -> goto out
	:: else -> skip
	fi;
#endif
#ifdef JOIN
	if
	:: i == 1 -> swept; goto out /* host 1 only sweeps (its reclaim thread) */
	:: i == 2 -> goto join
	:: i == 0 -> goto out /* host 0 sits out (a live slot) */
	:: else -> skip
	fi;
#endif
retry:
	/* step_once(): guard, read the lock, classify holders (read_slot);
	 * ph 1: lm_lock_convert() (st->cur) */
	atomic {
		!paused[i];
		GUARD(i);
		smode = lmode; slgen = lgen; swant = lwant; busy = 0; dj = N;
		k = 0;
		do
		:: k < N -> sh[k] = lhold[k]; shg[k] = lhgen[k];
			if
			:: sh[k] && k != i &&
			   ((sst[k] == S_LIVE && sgen[k] == shg[k]) || (sst[k] == S_REPL && sdead[k] == shg[k])) &&
			   (smode == M_EX || want == M_EX) && CHECKED ->
				if
				:: sst[k] == S_LIVE && STILL(k) -> dj = k /* H_DEAD */
				:: sst[k] == S_REPL && sby[k] == i && sbygen[k] == mygen[i] -> dj = k /* H_MINE */
				:: sst[k] == S_REPL && (expired[sby[k]] || fenced[sby[k]]) -> dj = k /* H_ORPHAN */
				:: else -> busy = 1 /* H_ALIVE, H_WAIT */
				fi
			:: else -> skip
			fi;
			k++
		:: else -> break
		od;
		if /* a conversion whose entry is gone: -LM_E_LOST */
		:: ph && !NAMED(i) -> holds[i] = M_FREE; goto out
		/* an acquire that finds itself named (H_SELF) and nothing to
		 * adopt (no unresolved ATS: re-reads never fail here): -EALREADY */
		:: !ph && NAMED(i) && holds[i] == M_FREE -> goto out
		:: else -> skip
		fi;
		if
		:: dj < N -> vst = sst[dj]; vgen = sgen[dj]; vcnt = scnt[dj]
		:: else -> skip
		fi;
#ifdef HANDOVER
		/* mark_wanted(): an EX record seen without a mark */
		domark = (dj == N && busy && smode == M_EX && swant == 0
#ifdef MARK_ONCE
			  && !marked /* mutant: one mark per acquire, not per image */
#endif
			 );
#endif
		waiting[i] = (dj == N && busy && !domark);
		k = 0;
		if /* the dispatch reads only what this step computed */
		:: dj < N -> busy = 0; goto takeover
		:: domark -> busy = 0; goto mark
		:: busy -> busy = 0;
#ifdef JOIN
			sss[0] = sst[0]; sss[1] = sst[1]; sss[2] = sst[2];
#endif
			goto busywait
		:: else -> goto lockats
		fi
	}
busywait: /* backoff_sleep(), wait forever: for a change */
	atomic {
		(lmode != smode || lgen != slgen || lwant != swant || lhold[0] != sh[0] ||
		 lhold[1] != sh[1] || lhold[2] != sh[2] || expired[0] || expired[1] ||
		 expired[2] || fenced[0] || fenced[1] || fenced[2]
#ifdef JOIN
		 || sst[0] != sss[0] || sst[1] != sss[1] || sst[2] != sss[2]
#endif
		) -> waiting[i] = 0;
#ifdef JOIN
		sss[0] = 0; sss[1] = 0; sss[2] = 0
#endif
	}
	goto retry;

mark: /* mark_wanted(): ATS record -> record with wanted = us, generation
       * unchanged; a lost reply landed and is -EBUSY like a success */
	atomic {
		!paused[i]; GUARD(i); domark = 0;
		if
		:: SAME_RECORD -> lwant = i + 1
#ifdef MARK_ONCE
			; marked = 1
#endif
		:: else -> skip /* miscompare: look again at once */
		fi
	}
	goto retry;

takeover: /* takeover(), replay_and_free() */
	if
	:: vst == S_REPL && sby[dj] == i && sbygen[dj] == mygen[i] -> goto replay /* H_MINE */
	:: else -> skip
	fi;
	atomic { /* iSCSI: PREEMPT the dead generation's key (not a dead
		  * replayer's: the code has no key for it), then
		  * lm_slot_ats_owned(): ATS victim image -> REPLAYING by us */
		!paused[i]; GUARD(i);
		PREEMPT(dj, (vst == S_LIVE -> vgen : sdead[dj]));
		if
		:: sst[dj] == vst && sgen[dj] == vgen && scnt[dj] == vcnt ->
			sdead[dj] = (vst == S_LIVE -> vgen : sdead[dj]);
			sst[dj] = S_REPL; sgen[dj] = vgen + 1; sby[dj] = i; sbygen[dj] = mygen[i];
			LOSE(lost)
		:: else -> goto retry /* it moved or someone else took it */
		fi
	}
	if
	:: lost ->
#ifndef NO_REREAD
		atomic { !paused[i]; lost = 0;
			if :: sst[dj] == S_REPL && sby[dj] == i && sbygen[dj] == mygen[i] -> skip
			   :: else -> goto retry fi }
#else
		lost = 0; goto retry /* -EIO; the next step finds it H_MINE */
#endif
	:: else -> skip
	fi;
replay: /* the takeover callback: a journal replay, guarded writes (the
	 * pause between guard and write is modelled in the critical section;
	 * -DREPLAY_WINDOW models it here too, with P6: the write lands while
	 * the slot is still REPLAYING by us, or is refused) */
#ifdef REPLAY_WINDOW
	atomic { !paused[i]; GUARD(i) }
	atomic { !paused[i];
		if
		:: preempted[i] -> skip
		:: else -> assert(OWN(i) && sst[dj] == S_REPL && sby[dj] == i && sbygen[dj] == mygen[i]) /* P6 */
		fi }
#else
	atomic { !paused[i]; GUARD(i); DATA_WRITE(i) }
#endif
	atomic { /* replay_and_free_locked(): ATS -> FREE */
		!paused[i]; GUARD(i);
		if
		:: sst[dj] == S_REPL && sby[dj] == i && sbygen[dj] == mygen[i] ->
			sst[dj] = S_FREE; sby[dj] = 0; sbygen[dj] = 0; sdead[dj] = 0
		:: else -> skip
		fi
	}
	goto retry;

lockats: /* step_once(): ATS old record -> rest + us */
	atomic {
		!paused[i]; GUARD(i);
		if
		:: SAME_RECORD ->
			k = 0;
			do /* drop stale holders (filter_holders) */
			:: k < N ->
				if
				:: lhold[k] && k != i &&
				   !((sst[k] == S_LIVE && sgen[k] == lhgen[k]) || (sst[k] == S_REPL && sdead[k] == lhgen[k])) ->
					lhold[k] = 0; lhgen[k] = 0
				:: else -> skip
				fi;
				k++
			:: else -> break
			od;
			lhold[i] = 1; lhgen[i] = mygen[i]; lmode = want; lwant = 0;
			/* a downgrade keeps the generation */
			lgen = (ph && want == M_SH -> lgen : (lgen + 1) % 4);
			LOSE(lost);
			if
			:: !lost ->
				holds[i] = want;
				/* P1 */
				k = 0;
				do
				:: k < N -> assert(k == i || holds[k] == M_FREE || expired[k] ||
						   (want == M_SH && holds[k] == M_SH)); k++
				:: else -> break
				od
			:: else -> skip
			fi
		:: else -> goto retry /* miscompare: restart */
		fi;
		k = 0; smode = 0; slgen = 0; swant = 0; dj = N; vst = 0; vgen = 0; vcnt = 0;
		sh[0] = 0; sh[1] = 0; sh[2] = 0; shg[0] = 0; shg[1] = 0; shg[2] = 0
	}
	if
	:: lost ->
#ifndef NO_REREAD
		atomic { !paused[i]; lost = 0; /* resolve_lock_ats(): named in the wanted mode? */
			if :: NAMED(i) && lmode == want -> holds[i] = want
			   :: ph -> goto release /* convert failed: the old mode */
			   :: else -> goto out fi }
#else
		lost = 0; goto out /* -EIO: the old code gave up; the record names us */
#endif
	:: else -> skip
	fi;

	/* the critical section: lm_guarded_write() = guard, then the write
	 * (none after a downgrade) */
	if
	:: ph && want == M_SH -> skip
	:: else ->
		atomic { !paused[i]; GUARD(i) }
		atomic { !paused[i]; DATA_WRITE(i) }
	fi;
#ifdef CONVERT
	/* lm_lock_convert(): host 0 downgrades EX -> SH, host 2 upgrades SH -> EX */
	if
	:: !ph && i == 0 -> /* a downgrader stops using EX when it asks */
		atomic { ph = 1; want = M_SH; holds[i] = M_SH }; goto retry
	:: !ph && i == 2 -> atomic { ph = 1; want = M_EX }; goto retry
	:: else -> skip
	fi;
#endif
#ifdef HANDOVER
	/* host 0 keeps its lock (libvmfs keep_locks) until a waiter marks it:
	 * lm_locks_wanted() polls (guarded read), then the release */
	if
	:: i == 0 -> atomic { !paused[i] && (lwant != 0 || expired[i]); GUARD(i) }
	:: else -> skip
	fi;
#endif
release:
	atomic { /* release_step(): ATS record -> record without us */
		!paused[i]; GUARD(i);
		if
		:: NAMED(i) ->
			lhold[i] = 0; lhgen[i] = 0; lwant = 0;
			if :: !lhold[0] && !lhold[1] && !lhold[2] -> lmode = M_FREE :: else -> skip fi;
			LOSE(lost)
		:: else -> skip /* -LM_E_LOST */
		fi;
		holds[i] = M_FREE /* released, or the re-read shows we are not named */
	}
	lost = 0;
#ifdef HANDOVER
	if /* the keeper takes the lock a second time (and keeps it again) */
	:: i == 0 && !again -> again = 1; goto retry
	:: else -> skip
	fi;
#endif
#ifdef JOIN
	goto out;
join: /* lm_join() on a full region: lm_join_reclaim(), join_takeover() for
       * slot 2 (the dead host D's; the only dead one at the start) */
	atomic {
		!paused[i];
		vst = sst[i]; vgen = sgen[i]; vcnt = scnt[i];
		if
		:: vst == S_FREE -> /* lm_hb_claim(): ATS free -> live, generation + 1 */
			sst[i] = S_LIVE; sgen[i] = vgen + 1; scnt[i] = 1 - vcnt;
			mygen[i] = sgen[i]; mycnt[i] = scnt[i]; hbon[i] = 1;
			vst = 0; vgen = 0; vcnt = 0; goto joined
		:: (vst == S_LIVE && STILL(i)) ||
		   (vst == S_REPL && (expired[sby[i]] || fenced[sby[i]])) -> skip /* dead */
		:: else -> waiting[i] = 1; goto jwait /* poll_sleep() */
		fi
	}
	atomic { /* lm_slot_ats_owned(): ATS -> REPLAYING(gen + 1) by the slot itself */
		!paused[i];
		if
		:: sst[i] == vst && sgen[i] == vgen && scnt[i] == vcnt ->
			sdead[i] = (vst == S_LIVE -> vgen : sdead[i]);
			sst[i] = S_REPL; sgen[i] = vgen + 1; sby[i] = i; sbygen[i] = vgen + 1;
			scnt[i] = 1 - vcnt; mygen[i] = sgen[i]; mycnt[i] = scnt[i];
			LOSE(lost)
		:: else -> goto join /* -EAGAIN: look again */
		fi
	}
	if
	:: lost -> atomic { !paused[i]; lost = 0; /* re-read: ours? */
			if :: OWN(i) -> skip :: else -> goto out fi }
	:: else -> skip
	fi;
	hbon[i] = 1; /* lm_hb_start(); lm_pr_preempt() of D's key: D has no write */
	/* the takeover callback: guarded writes (lease live) */
	atomic { !paused[i]; GUARD(i); DATA_WRITE(i) }
	atomic { !paused[i] && !hbl[i] -> hbon[i] = 0 } /* lm_hb_stop() */
	atomic { /* lm_guard(), ATS REPLAYING -> LIVE, same generation */
		!paused[i]; GUARD(i);
		if
		:: OWN(i) && scnt[i] == mycnt[i] ->
#ifdef JOIN_OLDGEN
			/* mutant: the LIVE record takes the dead owner's generation */
			sgen[i] = sdead[i]; mygen[i] = sgen[i];
#endif
			sst[i] = S_LIVE; sby[i] = 0; sbygen[i] = 0; sdead[i] = 0;
			scnt[i] = 1 - scnt[i]; mycnt[i] = scnt[i];
			hbon[i] = 1 /* lm_hb_start() */
			/* a lost reply: the re-read finds it ours, LIVE: landed */
		:: else -> fenced[i] = 1; goto out /* taken over while reclaiming */
		fi;
		vst = 0; vgen = 0; vcnt = 0
	}
joined: /* host 2 then reads (SH) like the base model's reader */
	goto retry;
jwait:
	atomic {
		(sst[i] != vst || sgen[i] != vgen || expired[0] || expired[1] || fenced[0] ||
		 fenced[1]) -> waiting[i] = 0
	}
	goto join;
#endif
out:
	done[i] = 1
}

#ifdef JOIN
/* Host 1's reclaim thread (lm_sweep(), recover_one()): one sweep over the
 * other slots, at any moment; the reclaim callback replays. */
proctype sweeper(byte i)
{
	byte dj, vst, vgen;
	bit vcnt, lost;
next:
	if
	:: dj == i -> dj++
	:: else -> skip
	fi;
	if
	:: dj >= N -> goto out
	:: else -> skip
	fi;
	atomic { /* lm_guard(), read slot dj */
		!paused[i]; GUARD(i);
		vst = sst[dj]; vgen = sgen[dj]; vcnt = scnt[dj];
		if
		:: vst == S_LIVE && STILL(dj) -> skip
		:: vst == S_REPL && sby[dj] == i && sbygen[dj] == mygen[i] -> goto replay
		:: vst == S_REPL && (expired[sby[dj]] || fenced[sby[dj]]) -> skip
		:: else -> vst = 0; vgen = 0; vcnt = 0; dj++; goto next
		fi
	}
	atomic { /* takeover(): as the acquirer's */
		!paused[i]; GUARD(i);
		PREEMPT(dj, (vst == S_LIVE -> vgen : sdead[dj]));
		if
		:: sst[dj] == vst && sgen[dj] == vgen && scnt[dj] == vcnt ->
			sdead[dj] = (vst == S_LIVE -> vgen : sdead[dj]);
			sst[dj] = S_REPL; sgen[dj] = vgen + 1; sby[dj] = i; sbygen[dj] = mygen[i];
			LOSE(lost)
		:: else -> vst = 0; vgen = 0; vcnt = 0; dj++; goto next /* -EAGAIN */
		fi
	}
	if
	:: lost ->
		atomic { !paused[i]; lost = 0;
			if :: sst[dj] == S_REPL && sby[dj] == i && sbygen[dj] == mygen[i] -> skip
			   :: else -> vst = 0; vgen = 0; vcnt = 0; dj++; goto next fi }
	:: else -> skip
	fi;
replay:
	atomic { !paused[i]; GUARD(i); DATA_WRITE(i) }
	atomic { /* replay_and_free_locked(): ATS -> FREE */
		!paused[i]; GUARD(i);
		if
		:: sst[dj] == S_REPL && sby[dj] == i && sbygen[dj] == mygen[i] ->
			sst[dj] = S_FREE; sby[dj] = 0; sbygen[dj] = 0; sdead[dj] = 0
		:: else -> skip
		fi;
		vst = 0; vgen = 0; vcnt = 0; dj++
	}
	goto next;
out:
	swept = 1
}
#endif

/* Pauses (SIGSTOP / crash), lease expiry while paused, resumption. */
#define ENV(k)                                                                 \
	:: atomic { npause < PAUSEMAX && !paused[k] && !done[k] && !expired[k] ->   \
		    paused[k] = 1; npause++ }                                    \
	:: atomic { paused[k] && !expired[k] && mygen[k] -> expired[k] = 1 }   \
	:: atomic { paused[k] -> paused[k] = 0 }

proctype env()
{
	do
	ENV(0)
	ENV(1)
	ENV(2)
	:: atomic { (!paused[0] || expired[0]) && (!paused[1] || expired[1]) &&
		    (!paused[2] || expired[2]) -> break }
	od
}

/* P4: when nothing can move, no live host is named without knowing it. */
active proctype leak_check()
{
	byte k;
end_wait:
	timeout ->
	atomic {
		k = 0;
		do
		:: k < N ->
			assert(!(lhold[k] && sst[k] == S_LIVE && lhgen[k] == sgen[k] && !STILL(k) &&
				 holds[k] == M_FREE));
			k++
		:: else -> break
		od;
		k = 0;
		do /* P5: nobody waits forever (a lost hand-over, a deadlock) */
		:: k < N -> assert(!waiting[k]); k++
		:: else -> break
		od
	}
}

init
{
	byte k;
	atomic {
		k = 0;
		do /* lm_join() of every host: ATS free -> live, generation 1 */
		:: k < N -> sgen[k] = 1; sst[k] = S_LIVE; mygen[k] = 1; hbon[k] = 1; run heartbeat(k); k++
		:: else -> break
		od;
		k = 0;
#ifdef JOIN
		/* slot 2 is the dead host D's (generation 1, still), holding the
		 * lock EX; host 2 is a joiner without a slot: the region is full */
		mygen[2] = 0; hbon[2] = 0;
		lmode = M_EX; lhold[2] = 1; lhgen[2] = 1; lgen = 1;
		run sweeper(1);
#endif
		run env();
		run host(0);
		run host(1);
		run host(2)
	}
}
