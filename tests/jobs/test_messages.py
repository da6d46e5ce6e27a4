"""The message format, the Celery envelope the producer writes, and the time-limit arithmetic."""

from __future__ import annotations

import json

import pytest
from celery import Celery

from framefleet.config import load_settings
from framefleet.errors import ConfigError, MessageError
from framefleet.jobs.broker import task_message
from framefleet.jobs.limits import (
    TimeLimits,
    checked_limits,
    requeue_bound_seconds,
    restore_interval,
    time_limits,
    visibility_timeout,
)
from framefleet.jobs.message import TASK_NAME, SegmentMessage
from framefleet.media.specs import OutputSpec, SegmentSpec
from framefleet.worker.factory import celery_config


def _message(**changes: object) -> SegmentMessage:
    spec = SegmentSpec(
        video_path="/data/r1/front.mp4",
        record_id="r1",
        content="camera/front-center",
        start_timestamp=1489728570.957,
        timestamps_path="/data/r1/front_timestamps.csv",
        start_seconds=70.0,
        end_seconds=None,
        output=OutputSpec(out_dir="/out", target_fps="2", resize_rate=0.25),
    )
    fields: dict[str, object] = {"job_id": "j1", "segment_id": 7, "spec": spec}
    return SegmentMessage(**{**fields, **changes})  # type: ignore[arg-type]


def test_message_round_trips_through_json_and_stays_small() -> None:
    message = _message(force=True)
    text = message.to_json()
    assert SegmentMessage.from_json(text) == message
    assert SegmentMessage.from_json(text).spec.job_id == "j1"  # stamped with its job
    assert len(text) < 1000  # paths, ids, a range, the output spec: never frame data


def test_message_of_another_version_is_refused_with_advice() -> None:
    data = _message().to_dict()
    with pytest.raises(MessageError, match=r"version 1 is not supported.*upgrade workers"):
        SegmentMessage.from_dict({**data, "v": 1})
    with pytest.raises(MessageError, match="keys"):
        SegmentMessage.from_dict({**data, "extra": 1})
    with pytest.raises(MessageError, match="unknown segment field"):
        SegmentMessage.from_dict({**data, "spec": {**data["spec"], "bogus": 1}})
    with pytest.raises(MessageError, match="not valid JSON"):
        SegmentMessage.from_json("{")


def test_task_message_has_the_headers_celery_itself_writes() -> None:
    app = Celery("probe", set_as_current=False)
    reference = app.amqp.as_task_v2(
        "some-id", TASK_NAME, args=[{}], time_limit=9, soft_time_limit=5
    )
    ours = task_message(_message(), limits=TimeLimits(5, 9), origin="test@host")

    assert set(ours["headers"]) == set(reference.headers)
    assert ours["headers"]["task"] == TASK_NAME
    assert ours["headers"]["timelimit"] == [9, 5]  # [hard, soft], as Celery orders them
    args, kwargs, embed = ours["body"]
    assert args == [_message().to_dict()] and kwargs == {}
    assert set(embed) == set(reference.body[2])
    json.dumps(ours)  # JSON only


def test_time_limits_grow_with_the_segment_and_stay_below_the_visibility_timeout() -> None:
    assert time_limits(10.0, factor=6.0) == TimeLimits(62, 78)
    assert time_limits(2.0, factor=1.5) == TimeLimits(5, 7)
    defaults = load_settings(env={})
    assert visibility_timeout(defaults) == 78 + 60
    assert restore_interval(138) == 10 and restore_interval(10) == 1
    assert requeue_bound_seconds(defaults) == 138 + 10 + 30
    assert checked_limits(defaults, 10.0) == TimeLimits(62, 78)


def test_segments_too_long_for_the_visibility_timeout_are_refused() -> None:
    settings = load_settings(env={"FRAMEFLEET_VISIBILITY_TIMEOUT_SECONDS": "60"})
    with pytest.raises(ConfigError, match=r"hard time limit of 78 s.*visibility timeout \(60 s\)"):
        checked_limits(settings, 10.0)
    with pytest.raises(ConfigError, match="time_limit_factor must be > 0"):
        load_settings(env={"FRAMEFLEET_TIME_LIMIT_FACTOR": "0"})


def test_celery_config_is_json_only_late_ack_and_sized_from_settings() -> None:
    settings = load_settings(
        env={"FRAMEFLEET_BROKER_URL": "redis://h:1/2", "FRAMEFLEET_MAX_TASKS_PER_CHILD": "7"}
    )
    conf = celery_config(settings)
    assert conf["broker_url"] == "redis://h:1/2"
    assert conf["accept_content"] == ["json"] and conf["task_serializer"] == "json"
    assert conf["task_acks_late"] and conf["task_reject_on_worker_lost"]
    assert conf["worker_prefetch_multiplier"] == 1
    assert conf["worker_max_tasks_per_child"] == 7
    transport = conf["broker_transport_options"]
    assert transport["visibility_timeout"] == 138 > conf["task_time_limit"] == 78
    assert (
        transport["unacked_restore_interval"] == 10 and transport["unacked_restore_throttle"] == 1
    )


def test_celery_finds_the_app_even_after_the_worker_modules_are_imported() -> None:
    from celery.app.utils import find_app

    import framefleet.worker.factory
    import framefleet.worker.tasks

    app = find_app("framefleet.worker")
    assert isinstance(app, Celery)
    assert TASK_NAME in app.tasks
    assert app is not framefleet.worker.factory  # the package attribute, not the module
