"""The in-process ETL schedule: every enabled source on ETL_SCHEDULE (cron), plus one run at start.

Each source is started on its own, so a source still running (SourceBusy: its lease is held, by
this process or another) is skipped and logged without holding the others back. Several
processes or machines may run this scheduler: each scheduled slot of a source is claimed in the
database by the first scheduler whose tick arrives (etl_locks, `slot:` rows), so it runs once
however many schedulers fire and however quickly the run ends; the leases keep each source to
one run at a time.

ETL_SCHEDULE is a five-field crontab line, evaluated in UTC; "off", "none", "disabled" or an
empty value turn the schedule off (ETL_RUN_ON_START still applies).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.cron import CronTrigger
from sqlalchemy.engine import Engine

from kasparro.config import Settings
from kasparro.db.engine import write_transaction
from kasparro.db.partitions import keep_partitions_ahead
from kasparro.etl.lease import claim_slot
from kasparro.etl.runner import SourceBusy, StartedRun, enabled_sources, start_runs, warm_up
from kasparro.logging import get_logger

log = get_logger(__name__)

SCHEDULE_OFF = frozenset({"", "off", "none", "disabled", "false", "0"})
MISFIRE_GRACE_SECONDS = 60


def schedule_is_off(schedule: str) -> bool:
    return schedule.strip().lower() in SCHEDULE_OFF


def parse_schedule(schedule: str) -> CronTrigger | None:
    """The cron trigger for ETL_SCHEDULE, None when it is off; ValueError when it is malformed."""
    if schedule_is_off(schedule):
        return None
    try:
        trigger: CronTrigger = CronTrigger.from_crontab(schedule.strip(), timezone="UTC")
    except ValueError as exc:
        raise ValueError(
            f"ETL_SCHEDULE={schedule!r} is not a five-field crontab line "
            f'(e.g. "*/10 * * * *"), nor "off": {exc}'
        ) from None
    return trigger


def current_slot(trigger: CronTrigger, now: datetime) -> datetime:
    """The slot a tick at `now` belongs to: the latest fire time not after `now` (a tick runs
    at its slot or, delayed, within the misfire grace after it)."""
    slot = None
    fire = trigger.get_next_fire_time(None, now - timedelta(seconds=MISFIRE_GRACE_SECONDS + 1))
    while fire is not None and fire <= now:
        slot = fire
        fire = trigger.get_next_fire_time(fire, fire + timedelta(seconds=1))
    return slot if slot is not None else now.replace(microsecond=0)


def claim_slots(engine: Engine, names: list[str], slot: datetime) -> list[str]:
    """The sources whose run at `slot` this process claimed (every other scheduler gets none)."""
    with write_transaction(engine) as conn:
        now = datetime.now(UTC)
        return [name for name in names if claim_slot(conn, name, slot, now)]


def run_enabled_sources(
    engine: Engine,
    settings: Settings,
    *,
    trigger: str,
    only: list[str] | None = None,
) -> list[StartedRun]:
    """Start a run of every enabled source (or of `only`) now, each on its own; a busy source
    is skipped."""
    started: list[StartedRun] = []
    for name in enabled_sources(settings) if only is None else only:
        try:
            started.extend(start_runs(engine, settings, [name], trigger=trigger))
        except SourceBusy as exc:
            log.info("etl_source_busy", source=name, running_run_id=exc.run_id)
        except Exception as exc:  # the next tick tries again; the scheduler thread must live
            log.error("etl_start_failed", source=name, error_type=type(exc).__name__, exc_info=exc)
    return started


class EtlScheduler:
    """A BackgroundScheduler running the enabled sources on a cron schedule and at start."""

    def __init__(self, engine: Engine, settings: Settings) -> None:
        self.engine = engine
        self.settings = settings
        self.trigger = parse_schedule(settings.etl_schedule)
        self._scheduler: Any = BackgroundScheduler(
            timezone="UTC",
            job_defaults={
                "coalesce": True,
                "max_instances": 1,
                "misfire_grace_time": MISFIRE_GRACE_SECONDS,
            },
        )

    @property
    def running(self) -> bool:
        return bool(self._scheduler.running)

    def start(self) -> None:
        warm_up()
        if self.trigger is not None:
            self._scheduler.add_job(
                self._tick, self.trigger, id="etl-schedule", kwargs={"trigger": "schedule"}
            )
        if self.settings.etl_run_on_start:
            # No trigger: a one-off job that runs as soon as the scheduler starts.
            self._scheduler.add_job(self._tick, id="etl-startup", kwargs={"trigger": "startup"})
        self._scheduler.start()
        log.info(
            "etl_scheduler_started",
            schedule=self.settings.etl_schedule if self.trigger is not None else "off",
            run_on_start=self.settings.etl_run_on_start,
            sources=enabled_sources(self.settings),
        )

    def shutdown(self) -> None:
        if self._scheduler.running:
            # Runs already started finish in their own threads (or are resumed next start).
            self._scheduler.shutdown(wait=False)
            log.info("etl_scheduler_stopped")

    def next_run_time(self) -> Any:
        job = self._scheduler.get_job("etl-schedule")
        return job.next_run_time if job is not None else None

    def _tick(self, trigger: str) -> None:
        keep_partitions_ahead(self.engine)  # the months ahead of price history (PostgreSQL)
        only = None
        if trigger == "schedule" and self.trigger is not None:
            slot = current_slot(self.trigger, datetime.now(UTC))
            try:
                only = claim_slots(self.engine, enabled_sources(self.settings), slot)
            except Exception as exc:  # the next tick tries again; the scheduler thread must live
                log.error("etl_slot_claim_failed", error_type=type(exc).__name__, exc_info=exc)
                return
            if not only:
                log.info("etl_slot_taken_elsewhere", slot=slot.isoformat())
                return
        started = run_enabled_sources(self.engine, self.settings, trigger=trigger, only=only)
        log.info("etl_scheduled_runs", trigger=trigger, runs=[r.run_id for r in started])
