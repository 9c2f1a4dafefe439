"""Every timing number the checks use, named, each with what it must stay far above or below.

"Should happen" gets a deadline far above normal latency and is polled until then; "should
not happen" gets an observation window. A verdict must not change when the machine is loaded
or the sandbox starved of CPU, so deadlines are generous and only cost time on failure.
"""

from __future__ import annotations

# --- deadlines: what should happen (polled; only a failing submission waits them out) -------

# A reply that should come: loopback latency is well under a millisecond, and even a sandbox
# starved of CPU serves a short message within tenths of a second.
REPLY_DEADLINE = 5.0
# Many clients at once, each perhaps a thread to start: a wider bound than one reply.
MANY_DEADLINE = 10.0
# A connection the server should accept (and register): one loop turn of an idle server.
ACCEPT_DEADLINE = 5.0
# A descriptor that should be closed after its peer left: one loop turn plus the end of stream.
CLOSE_DEADLINE = 5.0
# Megabytes of backlog to come back once the slow reader reads: loopback moves that in well
# under a second, a starved sandbox in a few.
SLOW_READER_DEADLINE = 30.0
# A dying server's last moments: far above the milliseconds an exit takes, far below every
# check's deadline, so a crash is reported as a crash rather than as a missing reply.
DEATH_GRACE = 1.0
# How long a client that has finished (or crashed) may take to be reaped and its output read.
EXIT_GRACE = 1.0
# A reader thread's last bytes once its pipe closed: the pipe is already at end of file.
JOIN_GRACE = 2.0
# What the kit's own helpers wait at least for an event another thread sets soon.
EVENT_GRACE = 2.0
# The grader's own blocking socket calls on loopback (connect, sendall): far above latency.
CLIENT_IO_TIMEOUT = 5.0

# --- observation windows: what should not happen ---------------------------------------------

# One window of CPU time: long enough to hold hundreds of loop turns of a busy loop (so its
# share is near 100%) and many scheduler ticks (CLK_TCK is 100 Hz: 10 ms resolution).
CPU_WINDOW = 0.8
# Percent of a window an idle server may want the CPU: an event loop asleep in the kernel is
# near 0, a busy loop near 100, whatever the load; 20 is far from both.
IDLE_CPU_LIMIT = 20.0
# A CPU window ends early once its verdict is certain: the process has been awake (asleep or
# running, not kept waiting for a CPU: schedstat's nanoseconds, not ticks) this long, and ran
# at most SURE_IDLE or at least SURE_BUSY percent of it. An event loop asleep in the kernel
# runs microseconds in that time, a busy loop all of it; a starved one gets there later, as
# its waiting is not counted, and one in between takes the whole window.
SETTLE_AWAKE = 0.1
SURE_IDLE = 5.0
SURE_BUSY = 60.0
# nonblocking: the stretch with nothing to accept or receive (BlockingIOError each time)
# ends once the server has run this much CPU: thousands of turns of a loop that retries.
# One that sleeps instead is watched the whole CPU_WINDOW.
SURVIVE_CPU = 0.05
# How long a second client is watched not being served while the first stays (blocking
# assignments): a concurrent server answers within milliseconds.
TURN_WINDOW = 1.0
# ... looked at this often: between two looks, a concurrent server has answered long since.
TURN_LOOK = 0.1
# The slow reader's sending made no progress this long: the socket buffers are full. Far
# above the microseconds a send takes while the server still reads.
STALL = 0.5
# ... or this long, once the server is seen asleep (two looks, no CPU used between): it is
# not reading, and no more data is on its way to it.
STALL_SURE = 0.1
# Between two sends of the slow reader once its buffer is full: short against STALL.
STALL_POLL = 0.01
# Until the idle server is seen asleep in the wait the assignment asks for (check_waits_in):
# an event loop settles into it within one loop turn, milliseconds; a busy loop never does,
# and only a failing submission waits this out.
WAIT_DEADLINE = 5.0
# Consecutive looks (POLL apart) that must find it asleep there: one look could catch a
# busy loop inside a zero-timeout select() at the instant it is called.
WAIT_LOOKS = 3

# --- what counts as a busy wait ---------------------------------------------------------------

# A select()/poll timeout this short returns at once: a loop around it never sleeps. Far
# below any timeout chosen to sleep (tens of milliseconds or more), at or above 0.
BUSY_TIMEOUT = 0.001

# --- asking the student's interpreter where it stands (stackdump.py) --------------------------

# How long to poll for the stack dump after the signal. faulthandler writes it from its signal
# handler within microseconds of delivery; a starved sandbox may take a scheduling round or
# two to run the program at all. Only a program that took the signal over waits this in vain,
# and it is not signalled (stackdump.answers).
STACK_DEADLINE = 2.0
# Between two looks at the dump file: it is complete once it stops growing between two.
STACK_POLL = 0.01
# A busy loop is sampled only while the kernel shows it running: up to this many looks, this
# far apart, to catch it on the CPU (a busy loop is there nearly always; a loop that sleeps
# between its turns is named by its wait instead).
SPIN_SAMPLES = 10
SPIN_LOOK = 0.02

# --- sampling periods: how often to look (far below every deadline, cheap per look) ----------

# Between two looks at /proc while a CPU window runs: the window's end is met within this.
CPU_SAMPLE = 0.02

# --- the client assignment ---------------------------------------------------------------------

# A client must have finished its whole conversation within this: it takes about a second
# with the kit's deliberate delays, a starved sandbox a few.
RUN_BOUND = 10.0
# nonblocking: the reply is held back at least this long, and until the client sleeps in the
# kernel or has had HOLD_CPU of CPU time (a busy retry loop): measured in the client's own
# progress, so a starved sandbox cannot release the reply before the client reached recv().
HOLD_AT_LEAST = 0.3
HOLD_CPU = 0.05
# ... but never longer than this.
HOLD_MOST = 5.0
# connect_wait: the accept queue stays full this long after the client's SYN was seen, so the
# first SYN is surely dropped (the kernel resends it about 1 s later).
QUEUE_FULL_FOR = 0.3
# The client's kernel resends a dropped SYN 1 s, 3 s, 7 s after the first: above the third.
HANDSHAKE_DEADLINE = 8.0

# --- the kit's own echo server (kitserver.py) --------------------------------------------------

# Once connected, the whole message should arrive within this: far above loopback latency.
MESSAGE_DEADLINE = 5.0
# The kit answers this long after the message, as a real network would: no client may count
# on the reply being there at once.
REPLY_DELAY = 0.2
# After the client has read a piece, before the next one goes out: long enough that the
# pieces arrive as separate reads, short against RUN_BOUND.
PIECE_GAP = 0.05
# A client that neither reads a piece nor leaves gets no more after this.
READ_DEADLINE = 10.0
# How often the kit (and the harness) looks at the kernel's tables: cheap, and far below
# every deadline above.
POLL = 0.02
# Waiting for what should happen soon (a forked server listens within milliseconds), the
# looks start this close together and the pause doubles up to POLL (timing.pauses).
FIRST_POLL = 0.002


def pauses(longest: float = POLL):
    """The pauses between the looks of a wait: FIRST_POLL, then twice as long each time, up
    to `longest`: quick to see what happens at once, no busier than before for the rest."""
    pause = min(FIRST_POLL, longest)
    while True:
        yield pause
        pause = min(2 * pause, longest)


# The kit's own sends to a client that does not read: then the kit gives up on it.
SEND_TIMEOUT = 5.0
# How often the kit's threads wake to see whether they should stop: short against every
# window above, so closing the kit's server takes no noticeable time.
KIT_TICK = 0.05
# The kit's own filler connections: the queue still has room, so they complete at once.
FILLER_CONNECT_TIMEOUT = 2.0
