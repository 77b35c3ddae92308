"""Log lines: text for people, one JSON object per line for machines."""

from __future__ import annotations

import json
import logging

import pytest

from feles.logs import FIELDS, configure_logging


def test_json_lines_carry_message_level_and_structured_fields(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("info", "json")
    logging.getLogger("feles.test").info("round %d done", 3, extra={FIELDS: {"round": 3, "accuracy": 0.5}})
    logging.getLogger("feles.test").debug("hidden at info level")
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1
    document = json.loads(lines[0])
    assert document["message"] == "round 3 done"
    assert document["level"] == "INFO" and document["logger"] == "feles.test"
    assert document["round"] == 3 and document["accuracy"] == 0.5
    assert document["time"].endswith("Z")


def test_exceptions_stay_inside_one_json_line(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("info", "json")
    try:
        raise ValueError("boom")
    except ValueError:
        logging.getLogger("feles.test").exception("failed")
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert "ValueError: boom" in json.loads(line)["exception"]


def test_text_lines_and_quiet_http_client(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("info", "text")
    logging.getLogger("httpx").info("HTTP Request: GET /v1/jobs/next")
    logging.getLogger("feles.test").warning("careful")
    err = capsys.readouterr().err
    assert "WARNING feles.test: careful" in err
    assert "HTTP Request" not in err


def test_a_named_process_is_in_every_text_and_json_line(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("info", "text", process="worker-1")
    logging.getLogger("feles.worker").info("first job")
    assert "INFO feles.worker[worker-1]: first job" in capsys.readouterr().err
    configure_logging("info", "json", process="worker-1")
    logging.getLogger("feles.worker").info("first job")
    document = json.loads(capsys.readouterr().err)
    assert document["process"] == "worker-1" and document["logger"] == "feles.worker"
    configure_logging("info", "json")
    logging.getLogger("feles.worker").info("alone")
    assert "process" not in json.loads(capsys.readouterr().err)
