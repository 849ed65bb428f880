"""The web console in a real browser: Debian's headless Chromium, driven by Playwright, against the running
service (real Ray Serve, Redis, the tiny model) on a loopback port. A person adds a camera from a generated
CCTV file, watches its events appear, opens one (the still with its kept cells drawn over it), asks a question
and sees the streamed answer with its evidence on the timeline; uploads a file with a progress bar; does it
all from the keyboard. Screenshots go to $OMNISIFT_SCREENSHOTS (default: the test's temporary directory).
"""

from __future__ import annotations

import os
import re
from datetime import datetime, timedelta, timezone
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Page, expect, sync_playwright

from pipeline.ingest.sample_media import SceneEvent, write_sample_video
from tests.fixtures.service import running_service

pytestmark = pytest.mark.e2e  # real Ray Serve and a browser

API_KEY = "console-e2e-key"
CHROMIUM = "/usr/bin/chromium"
WAIT_MS = 120_000
EVENTS = (
    SceneEvent("object", "person walking right", 12.0, 18.0, (220, 30, 30), ((0.15, 0.7), (0.8, 0.7))),
    SceneEvent("sound", "alarm", 14.0, 15.0, frequency=1000.0, level=0.5),
)


@pytest.fixture(scope="module")
def media(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("console-media")
    start = (datetime.now(timezone.utc) - timedelta(hours=1)).replace(second=0, microsecond=0)
    write_sample_video(root / "yard.mp4", width=320, height=240, duration=30.0, events=EVENTS, creation_time=start)
    write_sample_video(root / "dock.mp4", width=320, height=240, duration=12.0, events=EVENTS[:1])
    return root


@pytest.fixture(scope="module")
def service(tmp_path_factory, media):
    with running_service(tmp_path_factory.mktemp("console"), api_key=API_KEY, media_roots=[media]) as running:
        yield running


@pytest.fixture(scope="module")
def screenshots(tmp_path_factory) -> Path:
    where = Path(os.environ.get("OMNISIFT_SCREENSHOTS") or tmp_path_factory.mktemp("screenshots"))
    where.mkdir(parents=True, exist_ok=True)
    return where


@pytest.fixture(scope="module")
def browser():
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield chromium
        chromium.close()


@pytest.fixture(scope="module")
def seen() -> dict:
    """Every request the pages made: its URL and whether it carried the key."""
    return {"requests": []}


@pytest.fixture(scope="module")
def page(browser, service, seen):
    context = browser.new_context(viewport={"width": 1400, "height": 1100})
    page = context.new_page()
    page.on("request", lambda r: seen["requests"].append((r.url, r.headers.get("authorization"))))
    page.goto(service.url)
    page.get_by_label("API key").fill(API_KEY)
    page.get_by_role("button", name="Use key").click()
    yield page
    context.close()


def test_the_page_loads_without_the_key_and_asks_for_it(browser, service):
    context = browser.new_context()
    page = context.new_page()
    page.goto(service.url)
    expect(page.get_by_role("heading", name="Cameras")).to_be_visible()
    expect(page.locator("#status")).to_contain_text("API key", timeout=WAIT_MS)
    context.close()


def test_a_camera_added_from_a_file_shows_its_events_and_alert_firings(page: Page, service, media, screenshots):
    with httpx.Client(base_url=service.url, headers={"Authorization": f"Bearer {API_KEY}"}) as client:
        rule = {"name": "motion in the yard", "cameras": ["yard"], "condition": {"kind": "motion"}}
        created = client.post("/v1/alerts", json=rule)  # before the camera: rules see clips stored after them
        assert created.status_code == 201, created.text
    page.get_by_label("Camera id", exact=True).fill("yard")
    page.get_by_label("Source URL or file path").fill(str(media / "yard.mp4"))
    page.get_by_label("Timezone (IANA, optional)").fill("Europe/Berlin")
    page.get_by_role("button", name="Add camera").click()
    row = page.locator("#cameras tbody tr[data-camera='yard']")
    expect(row).to_be_visible(timeout=WAIT_MS)
    expect(row.locator("td").nth(4)).to_have_text("3", timeout=WAIT_MS)  # 30 s of footage: three clips
    events = page.locator("#events .event-mark")
    expect(events.first).to_be_visible(timeout=WAIT_MS)
    assert "Europe/Berlin" in page.locator("#timeline-camera").inner_text()
    expect(page.locator("#firings-legend")).to_be_visible()  # the service has alerts: firings are drawn
    expect(page.locator("#firings .firing-mark").first).to_be_visible(timeout=WAIT_MS)
    assert "Timeline" not in page.locator("#status").inner_text()
    page.screenshot(path=screenshots / "console-events.png", full_page=True)


def test_an_event_opens_its_clips_and_the_still_with_its_kept_cells(page: Page, screenshots):
    page.locator("#events .event-mark").first.click()
    expect(page.locator("#event-section")).to_be_visible()
    expect(page.locator("#event-clips button").first).to_be_visible()
    still = page.locator("#still")
    expect(still).to_have_attribute("src", re.compile(r"^blob:"), timeout=WAIT_MS)
    assert still.evaluate("img => img.complete && img.naturalWidth") == 320
    expect(still).to_have_attribute("alt", re.compile("kept video cells"))
    overlay = page.locator("#overlay")
    expect(overlay).to_have_attribute("data-cells", re.compile(r"^[1-9]\d*$"))
    assert overlay.evaluate("c => [c.width, c.height]") == [320, 240]
    drawn = overlay.evaluate("c => c.getContext('2d').getImageData(0, 0, c.width, c.height).data.some(v => v > 0)")
    assert drawn, "no kept cell was drawn over the still"
    expect(page.locator("#cell-frame-out")).to_contain_text("cells kept")
    expect(page.locator("#audio-marks")).to_have_attribute("aria-label", re.compile(r"Kept audio tokens: \d+ of \d+"))
    expect(page.locator("#chunk-scores tbody tr")).to_have_count(5)
    frames = int(page.locator("#cell-frame").get_attribute("max"))
    assert frames == 9  # ten merged frames: a frame per second at 2 fps
    page.screenshot(path=screenshots / "console-event.png", full_page=True)


def test_a_question_streams_its_answer_and_highlights_the_evidence(page: Page, screenshots):
    page.get_by_label("Question").fill("What happened?")
    page.get_by_role("button", name="Ask", exact=True).click()
    answer = page.locator("#answer")
    expect(answer).to_have_attribute("data-done", "timeline", timeout=WAIT_MS)
    expect(answer).to_contain_text("yard: activity from")
    expect(page.locator("#evidence li").first).to_be_visible()
    marks = page.locator("#evidence-marks .evidence-mark")
    expect(marks.first).to_be_visible()
    evidence = {m.get_attribute("data-clip") for m in marks.all()}
    assert evidence and all(c.startswith("yard@") for c in evidence)
    page.screenshot(path=screenshots / "console.png", full_page=True)


def test_an_upload_shows_its_progress_and_its_camera(page: Page, media):
    page.get_by_label("Upload to camera id").fill("dock")
    page.get_by_label("Video file").set_input_files(str(media / "dock.mp4"))
    page.get_by_role("button", name="Upload").click()
    expect(page.locator("#upload-status")).to_contain_text("Ingest done", timeout=WAIT_MS)
    assert page.locator("#upload-progress").evaluate("p => p.value") == 1
    assert page.locator("#job-progress").evaluate("p => p.value") == 1
    expect(page.locator("#cameras tbody tr[data-camera='dock']")).to_be_visible(timeout=WAIT_MS)
    expect(page.locator("#timeline-camera")).to_contain_text("dock")


def test_every_control_has_a_label_and_the_timeline_works_from_the_keyboard(page: Page):
    unnamed = page.evaluate(
        """() => [...document.querySelectorAll('input, textarea, select, button, progress')]
            .filter(el => !(el.labels && el.labels.length) && !el.getAttribute('aria-label')
                          && !el.textContent.trim())
            .map(el => el.outerHTML.slice(0, 80))"""
    )
    assert unnamed == []
    page.locator("#cameras button.camera", has_text="yard").focus()
    page.keyboard.press("Enter")
    expect(page.locator("#timeline-camera")).to_contain_text("yard")
    timeline = page.locator("#timeline")
    timeline.focus()
    span = _span_s(page)
    page.keyboard.press("+")
    assert abs(_span_s(page) - span / 2) < 0.01
    page.keyboard.press("ArrowRight")
    assert abs(_span_s(page) - span / 2) < 0.01
    page.keyboard.press("Home")
    assert abs(_span_s(page) - span) < 0.01
    page.keyboard.press("Tab")  # from the timeline to its first event
    focused = page.evaluate("document.activeElement.className")
    assert "event-mark" in focused
    page.locator("#event-section").evaluate("s => s.hidden = true")
    # Enter on that mark; the locator re-resolves it first, since the 3-s poll may redraw the marks in between
    page.locator("#events .event-mark").first.press("Enter")
    expect(page.locator("#event-section")).to_be_visible()
    expect(page.locator("#still")).to_have_attribute("src", re.compile(r"^blob:"))


def test_the_key_travels_only_in_the_header(page: Page, seen):
    api_calls = [(url, auth) for url, auth in seen["requests"] if "/v1/" in url]
    keyed = next(i for i, (_, auth) in enumerate(api_calls) if auth)  # before the key was typed in: none sent
    assert keyed <= 2 and all(auth == f"Bearer {API_KEY}" for _, auth in api_calls[keyed:])
    assert not any(API_KEY in url for url, _ in seen["requests"])
    assert page.evaluate("sessionStorage.getItem('omnisift.apiKey')") == API_KEY
    assert page.evaluate("localStorage.length") == 0


def test_removing_a_camera_stops_it_and_keeps_its_clips(page: Page, service):
    page.get_by_role("button", name="Remove camera yard (its stored clips stay)").click()
    row = page.locator("#cameras tbody tr[data-camera='yard']")
    expect(row.get_by_role("button", name=re.compile("Remove"))).to_have_count(0, timeout=WAIT_MS)
    expect(row.locator("td").nth(1)).to_have_text("stored")
    with httpx.Client(base_url=service.url, headers={"Authorization": f"Bearer {API_KEY}"}) as client:
        assert client.get("/v1/streams/yard").status_code == 404
        assert {c["camera_id"]: c["clips"] for c in client.get("/v1/cameras").json()}["yard"] == 3


def _span_s(page: Page) -> float:
    return float(page.locator("#timeline-range").get_attribute("data-span"))
