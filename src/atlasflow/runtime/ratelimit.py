"""The global Jira rate limit: a Prefect global concurrency limit with slot decay that every flow's Jira
requests share, on every worker.

:class:`PrefectRateLimiter` is what a Jira client calls before each request (``before_request``) and when the
server asks for a pause (``on_hold``); the client itself (:mod:`atlasflow.clients`) knows no Prefect. The
limit is created by ``atlasflow setup``; without it, requests are not limited.
"""

from __future__ import annotations

import logging
import math
import threading
import time
import weakref

import httpx
from prefect.client.orchestration import get_client
from prefect.exceptions import ObjectNotFound
from prefect.settings import PREFECT_CLIENT_MAX_RETRIES
from tenacity import Retrying, retry_if_exception_type, stop_after_delay, wait_exponential_jitter

from atlasflow.clients.ratelimit import on_critical_path

log = logging.getLogger(__name__)

#: The global rate limit (created by ``atlasflow setup``) that every flow's Jira requests share.
JIRA_RATE_LIMIT = "atlasflow-jira-api"
#: Slots of the rate limit a client takes per round trip to the Prefect API.
RATE_LIMIT_BATCH = 5
#: The least time the rate limiter keeps asking a busy Prefect API before failing the request, in seconds
#: (longer when Prefect's client would itself retry longer: :func:`prefect_retry_budget`).
PREFECT_PATIENCE = 60.0


def prefect_retry_budget(retries: int | None = None) -> float:
    """Seconds Prefect's client waits in all, jitter aside, before giving up on a call: ``2**n`` s after its
    n-th failed attempt, for ``retries`` retries (default: ``PREFECT_CLIENT_MAX_RETRIES``)."""
    count = PREFECT_CLIENT_MAX_RETRIES.value() if retries is None else retries
    return float(sum(2**attempt for attempt in range(1, count + 1)))


class PrefectRateLimiter:
    """Takes a slot of a Prefect rate limit for every request; does nothing when the limit does not exist.

    Slots are taken :data:`RATE_LIMIT_BATCH` at a time (never more than the limit's burst) and handed to
    this client's requests one by one: one round trip to the Prefect API per batch instead of one per
    request, which at real-world latency would otherwise cap a parallel export well below the limit. The
    limit's rate is unchanged: slots decay at the same pace whoever holds them.

    Requests on a client's critical path (:func:`atlasflow.clients.ratelimit.critical_path`: the chain of
    id pages of a large search) take the next free slot before requests the chain feeds.

    A refused batch is asked for again once that many slots have decayed, and from then on each batch
    once the previous one's slots have (see :meth:`_occupy`). (Prefect's own ``rate_limit`` waits for the
    server's ``Retry-After``, which counts every slot refused lately as if still waiting: a lone client
    polling at that pace gets about half the rate.)

    Whether the limit exists is asked once per client: acquiring a slot of a missing limit costs Prefect
    more than a second of back-off each time.
    """

    def __init__(self, name: str) -> None:
        self.name = name
        self.active: bool | None = None
        self.limit = 1
        self.per_second = 0.0
        self._ready = 0  # slots taken and not yet handed to a request
        self._taking = False  # a thread is asking Prefect for the next batch
        self._first_waiting = 0  # requests on the critical path waiting for a slot
        self._turn = threading.Condition()
        self._client: _SlotClient | None = None
        self._client_lock = threading.Lock()  # batches and server-asked holds may ask at once
        self._paced = False  # a batch was refused lately: ask for each next one once the last has decayed
        self._next_ask = 0.0  # monotonic time the last batch's slots have decayed by

    def __call__(self) -> None:
        """A slot for one request; requests on the critical path (:func:`critical_path`) are served first."""
        first = on_critical_path()
        with self._turn:
            if self.active is None:
                self._look_up()
            if not self.active:
                return
            self._first_waiting += first
            try:
                while True:
                    my_turn = first or not self._first_waiting
                    if my_turn and self._ready:
                        self._ready -= 1
                        return
                    if my_turn and not self._taking:
                        self._taking = True
                        break
                    self._turn.wait()
            finally:
                self._first_waiting -= first
                if first:
                    self._turn.notify_all()  # the others' turn, if it was the last one first in line
        batch, spare = max(1, min(RATE_LIMIT_BATCH, self.limit)), 0
        try:
            self._occupy(batch)
            spare = batch - 1  # one is this request's
        finally:
            with self._turn:
                self._taking = False
                self._ready += spare
                self._turn.notify_all()

    def hold(self, seconds: float) -> None:
        """The server asked for a pause: occupy the slots that many seconds of the shared rate free, so every
        flow on every worker slows down, not only this client (at most the whole limit at once)."""
        if self.active is None:
            self._look_up()
        if self.active and self.per_second > 0:
            self._occupy(min(self.limit, max(1, math.ceil(seconds * self.per_second))))

    def _occupy(self, slots: int) -> None:
        """Occupy ``slots`` of the limit, waiting while they are taken.

        Once a batch has been refused, the limit is spent as fast as it frees: each later batch is asked
        for when the previous one's slots have decayed, not at once (that ask would be refused, and a
        refusal restarts the server's decay clock). Pacing ends after an idle spell long enough for the
        limit to fill again.
        """
        client = self._prefect()
        decay = slots / self.per_second if self.per_second > 0 else 1.0
        while True:
            now = time.monotonic()
            if now > self._next_ask + decay:
                self._paced = False
            elif self._paced and now < self._next_ask:
                time.sleep(self._next_ask - now)
            try:
                client.increment(self.name, slots)
            except httpx.HTTPStatusError as refused:
                if refused.response.status_code != httpx.codes.LOCKED:
                    raise
                self._paced = True
                self._next_ask = time.monotonic() + decay
                continue
            self._next_ask = time.monotonic() + decay
            return

    def _prefect(self) -> _SlotClient:
        """One Prefect connection for the limiter's life, closed with it: opening one per batch costs ~60 ms,
        paid by every request waiting behind the batch."""
        with self._client_lock:
            if self._client is None:
                self._client = _SlotClient()
                weakref.finalize(self, self._client.close)
            return self._client

    def _look_up(self) -> None:
        with get_client(sync_client=True) as client:
            try:
                limit = client.read_global_concurrency_limit_by_name(self.name)
            except ObjectNotFound:
                self.active = False
                log.info(
                    "rate limit %s does not exist (see `atlasflow setup`): Jira requests are not limited", self.name
                )
                return
        self.active = True
        self.limit = limit.limit
        self.per_second = float(limit.slot_decay_per_second or 0.0)


class _SlotClient:
    """The rate limiter's own Prefect client (not the flow run's, which ``get_client`` hands out inside a
    run), asking a busy server again sooner than Prefect's client would."""

    def __init__(self) -> None:
        # A response hook raising on "busy" ends Prefect's own retry loop at once, back-off and all.
        self._client = get_client(httpx_settings={"event_hooks": {"response": [_raise_busy]}}, sync_client=True)
        self._client.__enter__()

    def increment(self, name: str, slots: int) -> None:
        """Take ``slots`` of the limit now, or raise its refusal (423).

        A busy Prefect API is asked again after 50 ms, doubling, for as long as Prefect's client would retry
        (:func:`prefect_retry_budget`, at least :data:`PREFECT_PATIENCE`): every
        request of the export waits behind this one, where Prefect's client would wait 2 s and more.
        """
        for attempt in Retrying(
            retry=retry_if_exception_type(PrefectBusy),
            wait=wait_exponential_jitter(initial=0.05, max=5, jitter=0.05),
            stop=stop_after_delay(max(PREFECT_PATIENCE, prefect_retry_budget())),
            reraise=True,
        ):
            with attempt:
                self._client.increment_concurrency_slots(names=[name], slots=slots, mode="rate_limit")

    def close(self) -> None:
        self._client.__exit__(None, None, None)


class PrefectBusy(RuntimeError):
    """The Prefect API answered 503: busy, not refusing (a server on SQLite while another write holds the
    database: a flow's own logs and states, for one).

    Outside :mod:`atlasflow.errors` on purpose: the orchestrator failing is not an outcome atlasflow words in
    one line; a run it fails keeps the traceback.
    """


def _raise_busy(response: httpx.Response) -> None:
    if response.status_code == httpx.codes.SERVICE_UNAVAILABLE:
        raise PrefectBusy(f"the Prefect API is busy: {response.request.method} {response.request.url.path}")
