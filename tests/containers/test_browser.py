"""A person's path in a real browser: headless Chromium opens the login page through the published port,
signs in as demo, sees the welcome page, and the XML of that login appears in the shared volume."""

from __future__ import annotations

from pathlib import Path

import pytest
from composepod import DEMO_PASSWORD, DEMO_USER, ComposePod, tag_agent
from podkit_testing import skip_or_fail
from support import free_port, wait_for
from webdriver import Browser, browser_programs

pytestmark = pytest.mark.container


def test_a_person_signs_in_with_chromium_and_the_xml_appears(pod: ComposePod, tmp_path: Path) -> None:
    if browser_programs() is None:
        skip_or_fail("chromium and chromium-driver are not installed")
    agent = tag_agent()  # Chromium sends it as its User-Agent: the event is this browser's
    with Browser(port=free_port(), profile=tmp_path / "profile", user_agent=agent) as browser:
        browser.open(f"{pod.base_url}/")
        assert browser.title == "Sign in"
        browser.type("#username", DEMO_USER)
        browser.type("#password", DEMO_PASSWORD)
        browser.click("button[type=submit]")
        # The form's navigation may still be under way when the click returns.
        welcome = f"{pod.base_url}/welcome"
        wait_for(lambda: browser.url == welcome, timeout=20, interval=0.1, what=f"the browser at {welcome}")
        assert browser.text("h1") == f"Welcome, {DEMO_USER}"

    files = pod.wait_delivered(agent, 1)
    [record] = files.xml(agent)
    assert (record["event_type"], record["username"]) == ("login.success", DEMO_USER)
