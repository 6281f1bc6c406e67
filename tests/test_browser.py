"""The tasklist in headless Chromium against a live server: the README's booking story, hostile text,
errors in place, and a page on another origin that tries to claim a task.

Each page is saved as a screenshot under ``tests/artifacts/``. Waiting is polling
with a bound (WebDriverWait), never a sleep.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask

from backends.memory import MemoryBackend
from tests.api_support import BASE, Api, make_app, ok
from tests.browser_support import chromium_driver, screenshot, wait_for
from tests.live_server import LiveServer, serving

HOSTILE = "<img src=x onerror=alert(1)>"
HOSTILE_BPMN = f"""<?xml version="1.0" encoding="UTF-8"?>
<definitions xmlns="http://www.omg.org/spec/BPMN/20100524/MODEL"
             xmlns:camunda="http://camunda.org/schema/1.0/bpmn" id="d" targetNamespace="t">
  <process id="hostile" name="{HOSTILE.replace("<", "&lt;").replace(">", "&gt;")} process" isExecutable="true">
    <startEvent id="s"/><sequenceFlow id="f1" sourceRef="s" targetRef="t1"/>
    <userTask id="t1" name="{HOSTILE.replace("<", "&lt;").replace(">", "&gt;")}" camunda:candidateGroups="facilities">
      <documentation>{HOSTILE.replace("<", "&lt;").replace(">", "&gt;")}</documentation>
    </userTask>
    <sequenceFlow id="f2" sourceRef="t1" targetRef="e"/><endEvent id="e"/>
  </process>
</definitions>"""


@pytest.fixture(scope="module")
def driver() -> Iterator[Any]:
    browser = chromium_driver()
    try:
        yield browser
    finally:
        browser.quit()


@pytest.fixture
def app() -> Flask:
    app = make_app(MemoryBackend())
    api = Api(app.test_client())
    api.identity("alice", groups=["facilities"])
    api.identity("bob", groups=["managers"], roles=["approver"])
    return app


@pytest.fixture
def live(app: Flask) -> Iterator[LiveServer]:
    with serving(app) as server:
        yield server


def css(driver: Any, selector: str) -> list[Any]:
    from selenium.webdriver.common.by import By

    return driver.find_elements(By.CSS_SELECTOR, selector)


def one(driver: Any, selector: str) -> Any:
    """The element once it is there (polling)."""
    return wait_for(driver, lambda d: (css(d, selector) or [None])[0], f"no element {selector}")


def open_as(driver: Any, live: LiveServer, user: str, view: str = "tasks") -> None:
    driver.get(f"{live.url}/tasklist?user={user}#/{view}")
    wait_for(driver, lambda d: f"Signed in as {user}" in one(d, "#who-info").text)


def task_card(driver: Any, name: str) -> Any:
    def find(d: Any) -> Any:
        for card in css(d, "#task-list li[data-task-id]"):
            if card.find_element("css selector", "h3").text == name:
                return card
        return None

    return wait_for(driver, find, f"no task card {name!r}")


def no_alert(driver: Any) -> None:
    from selenium.common.exceptions import NoAlertPresentException

    with pytest.raises(NoAlertPresentException):
        driver.switch_to.alert.text  # noqa: B018


def severe_console_errors(driver: Any) -> list[str]:
    """Console errors other than the 404s the page expects (no form route for a process)."""
    return [
        entry["message"]
        for entry in driver.get_log("browser")
        if entry["level"] == "SEVERE" and "/form - " not in entry["message"]
    ]


# -- the README's booking story ------------------------------------------------------------------


def test_booking_story(driver: Any, live: LiveServer, app: Flask) -> None:
    from selenium.webdriver.common.keys import Keys

    driver.set_window_size(1280, 900)
    # carol starts a booking from the process list, with its business object
    open_as(driver, live, "carol", "processes")
    card = '[data-process-key="bookingRoom"]'
    one(driver, f"{card} [data-action='diagram']").click()  # the process's diagram, fetched with the caller's token
    one(driver, f"{card} .diagram g[data-element-id='ReviewBooking']")
    one(driver, f"{card} [data-action='start']").click()
    one(driver, f"{card} [data-role='var-name']").send_keys("RoomObject")
    one(driver, f"{card} [data-role='var-value']").send_keys('{"room": "Everest", "capacity": 20}')
    screenshot(driver, "01-start-process")
    one(driver, f"{card} [data-action='submit-start']").click()
    started = one(driver, "[data-role='started-instance']")
    instance_id = started.text.removeprefix("instance ")
    assert ok(Api(app.test_client()).get(f"/instance/{instance_id}"))["createBy"] == "carol"

    # alice sees it in her group queue, with counts, claims it by keyboard, completes the form
    open_as(driver, live, "alice")
    group = "#queues button[data-queue='group:facilities']"
    wait_for(driver, lambda d: one(d, f"{group} .count").text == "1")
    assert "Group facilities" in one(driver, group).text
    one(driver, group).click()
    one(driver, f"{group}[aria-pressed='true']")
    review = task_card(driver, "Review booking")
    screenshot(driver, "02-alice-group-queue")
    claim = review.find_element("css selector", "[data-action='claim']")
    claim.send_keys(Keys.ENTER)
    # claimed, it leaves the queue of unassigned tasks and is in her own list
    wait_for(driver, lambda d: not [c for c in css(d, "#task-list li[data-task-id] h3") if c.text == "Review booking"])
    one(driver, "#queues button[data-queue='user:alice']").click()
    wait_for(driver, lambda d: task_card(d, "Review booking").find_element("css selector", ".assignee").text == "alice")
    review = task_card(driver, "Review booking")
    review.find_element("css selector", "[data-action='complete']").click()
    form = wait_for(driver, lambda d: review.find_elements("css selector", "form.complete-form"))[0]
    assert "RoomObject" in [
        e.get_attribute("value") for e in form.find_elements("css selector", "[data-role='var-name']")
    ]
    screenshot(driver, "03-alice-complete-form")
    form.find_element("css selector", "[data-action='submit-complete']").click()
    wait_for(driver, lambda d: not [c for c in css(d, "#task-list li[data-task-id] h3") if c.text == "Review booking"])

    # bob approves (his to-do list includes the managers' queue)
    open_as(driver, live, "bob")
    approval = task_card(driver, "Manager approval")
    approval.find_element("css selector", "[data-action='claim']").click()
    approval = wait_for(
        driver,
        lambda d: (
            task_card(d, "Manager approval")
            if task_card(d, "Manager approval").find_element("css selector", ".assignee").text == "bob"
            else None
        ),
    )
    approval.find_element("css selector", "[data-action='complete']").click()
    form = wait_for(driver, lambda d: approval.find_elements("css selector", "form.complete-form"))[0]
    form.find_element("css selector", "[data-action='add-variable']").click()
    names = form.find_elements("css selector", "[data-role='var-name']")
    values = form.find_elements("css selector", "[data-role='var-value']")
    names[-1].send_keys("approved")
    values[-1].send_keys("true")
    screenshot(driver, "04-bob-approves")
    form.find_element("css selector", "[data-action='submit-complete']").click()
    wait_for(
        driver, lambda d: not [c for c in css(d, "#task-list li[data-task-id] h3") if c.text == "Manager approval"]
    )

    # the instance page: the next task active, the done path blue, the history
    driver.get(f"{live.url}/tasklist?user=carol#/instance/{instance_id}")
    svg = one(driver, "#instance-diagram svg")

    def classes(element_id: str) -> set[str]:
        return set((one(driver, f"#instance-diagram g[data-element-id='{element_id}']").get_attribute("class")).split())

    wait_for(driver, lambda d: "bpm-active" in classes("ConfirmBooking"))
    for done in (
        "Start",
        "ReviewBooking",
        "SizeGateway",
        "ManagerApproval",
        "ApprovedGateway",
        "Flow_large",
        "Flow_approved",
    ):
        assert "bpm-done" in classes(done), done
    for untouched in ("Flow_small", "Rejected", "Booked"):
        assert not classes(untouched) & {"bpm-done", "bpm-active"}, untouched
    # the page's CSS colours the highlights (the SVG's own <style> is not used under the CSP)
    body = one(driver, "#instance-diagram g[data-element-id='ConfirmBooking'] .bpm-body")
    assert driver.execute_script("return getComputedStyle(arguments[0]).stroke", body) == "rgb(26, 127, 55)"
    assert not css(driver, "#instance-diagram style")
    assert svg.get_attribute("role") == "img"
    history = one(driver, ".timeline").text
    assert "task.claimed" in history and "by alice" in history and "by bob" in history
    assert "Confirm booking" in one(driver, "#instance-tasks").text
    screenshot(driver, "05-instance-diagram")
    panel = one(driver, ".instance .panel")  # the diagram's panel alone (README)
    driver.execute_script("arguments[0].scrollIntoView()", panel)
    panel.screenshot(str(screenshot(driver, "05-instance-page").with_name("05-instance-diagram-panel.png")))
    assert severe_console_errors(driver) == []

    # a phone-sized screen: one column, nothing wider than the screen but the scrollable diagram
    driver.set_window_size(390, 844)
    driver.get(f"{live.url}/tasklist?user=carol#/tasks")
    task_card(driver, "Confirm booking")
    width = driver.execute_script("return document.documentElement.scrollWidth")
    assert width <= driver.execute_script("return window.innerWidth"), width
    screenshot(driver, "06-phone-tasklist")
    driver.set_window_size(1280, 900)


# -- hostile text, errors in place -------------------------------------------------------------


def test_hostile_names_and_variables_render_as_text(driver: Any, live: LiveServer, app: Flask) -> None:
    api = Api(app.test_client())
    ok(
        api.post(
            "/deployments",
            data=HOSTILE_BPMN.encode(),
            content_type="application/xml",
            query_string={"fileName": "hostile.bpmn"},
        )
    )
    instance_id = ok(
        api.post(
            "/process/start",
            json={"processName": f"{HOSTILE} process", "object": {HOSTILE: HOSTILE, "note": {"html": HOSTILE}}},
            query_string={"user": HOSTILE},
        )
    )
    open_as(driver, live, "alice")
    card = task_card(driver, HOSTILE)
    assert HOSTILE in card.find_element("css selector", ".task-description").text
    assert HOSTILE in card.find_element("css selector", ".task-process").text
    assert not css(driver, "img")
    no_alert(driver)
    screenshot(driver, "07-hostile-task")
    driver.get(f"{live.url}/tasklist?user=alice#/instance/{instance_id}")
    wait_for(driver, lambda d: HOSTILE in one(d, ".variables").text)
    assert HOSTILE in one(driver, "#instance-title").text
    assert not css(driver, "img") and not css(driver, "#instance-diagram foreignObject")
    one(driver, "#instance-diagram g[data-element-id='t1']")
    labels = driver.execute_script(
        "return [...document.querySelectorAll('#instance-diagram text')].map(t => t.textContent).join(' ')"
    )
    assert "<img" in labels
    no_alert(driver)
    screenshot(driver, "08-hostile-instance")


def test_errors_show_in_place(driver: Any, live: LiveServer, app: Flask) -> None:
    api = Api(app.test_client())
    # a booking without its business object: completing the review fails the gateway's condition (422)
    ok(api.post("/process/start", json={"processName": "booking room"}, query_string={"user": "carol"}))
    open_as(driver, live, "alice")
    card = task_card(driver, "Review booking")
    card.find_element("css selector", "[data-action='complete']").click()
    form = wait_for(driver, lambda d: card.find_elements("css selector", "form.complete-form"))[0]
    form.find_element("css selector", "[data-action='add-variable']").click()
    form.find_elements("css selector", "[data-role='var-name']")[-1].send_keys("size")
    value = form.find_elements("css selector", "[data-role='var-value']")[-1]
    value.send_keys("{not json")
    form.find_element("css selector", "[data-action='submit-complete']").click()
    invalid = wait_for(driver, lambda d: form.find_elements("css selector", "[aria-invalid='true']"))
    assert invalid == [value] and value == driver.switch_to.active_element  # focus goes to the field to fix
    assert "JSON" in form.find_element("css selector", ".field-error:not([hidden])").text
    value.clear()
    value.send_keys("1")
    form.find_element("css selector", "[data-action='submit-complete']").click()
    alert = wait_for(driver, lambda d: [e for e in form.find_elements("css selector", "[role='alert']") if e.text])[0]
    assert "EXPRESSION_ERROR" in alert.text and "HTTP 422" in alert.text
    screenshot(driver, "09-error-in-place")

    # a server error (the backend fails): the list says so in place, with the request id
    runtime = app.extensions["bpm_runtime"]

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("disk on fire")

    runtime.query_tasks = broken
    one(driver, "[data-action='refresh']").click()
    message = wait_for(driver, lambda d: one(d, "#tasks-error").text)
    assert "INTERNAL_ERROR" in message and "request id" in message and "disk on fire" not in message
    screenshot(driver, "10-server-error")
    del runtime.query_tasks


# -- a page on another origin cannot write -------------------------------------------------------

ATTACK = """<!doctype html><title>waiting</title><body><script>
fetch("{url}", {{method: "POST", mode: "no-cors", credentials: "include"}})
  .then(() => {{ document.title = "sent"; }}, (e) => {{ document.title = "failed " + e; }});
</script>"""


def attacker(target: str) -> Any:
    def page(environ: Any, start_response: Any) -> list[bytes]:
        start_response("200 OK", [("Content-Type", "text/html")])
        return [ATTACK.format(url=target).encode()]

    return page


def test_a_page_on_another_origin_cannot_claim(driver: Any, live: LiveServer, app: Flask) -> None:
    api = Api(app.test_client())
    instance_id = api.start("booking room", {"RoomObject": {"capacity": 20}}, user="carol")
    task_id = api.task(instance_id, "ReviewBooking")["id"]
    claim = f"{live.url}{BASE}/tasks/{task_id}/claim?user=alice"
    requests: list[str] = []
    original = app.wsgi_app

    def counting(environ: Any, start_response: Any) -> Any:
        if environ["REQUEST_METHOD"] == "POST" and environ["PATH_INFO"].endswith("/claim"):
            requests.append(environ.get("HTTP_ORIGIN", ""))
        return original(environ, start_response)

    app.wsgi_app = counting  # type: ignore[method-assign]
    # "localhost" is another site than 127.0.0.1: the browser says Sec-Fetch-Site: cross-site
    with serving(attacker(claim), host="localhost") as evil:
        driver.get(f"{evil.url}/")
        # the fetch settles either way (the answer is opaque, or blocked by Cross-Origin-Resource-Policy)
        wait_for(driver, lambda d: d.title != "waiting")
        wait_for(driver, lambda d: requests)
        assert requests == [evil.url]  # the browser did send the bodiless POST ...
        assert api.task(instance_id, "ReviewBooking")["assignee"] is None  # ... and it changed nothing
        screenshot(driver, "11-cross-origin-page")

        # the same page, once its origin is allowed, does claim: the check is what stopped it
        app.config["BPM_CORS_ORIGINS"] = evil.url
        driver.get(f"{evil.url}/?again")
        wait_for(driver, lambda d: len(requests) == 2)
        wait_for(driver, lambda d: api.task(instance_id, "ReviewBooking")["assignee"] == "alice")
    app.wsgi_app = original  # type: ignore[method-assign]


def test_docs_render_offline(driver: Any, live: LiveServer) -> None:
    driver.get(f"{live.url}/docs")
    wait_for(driver, lambda d: css(d, ".swagger-ui .opblock"))
    assert "BPM Process Runtime" in one(driver, ".swagger-ui .title").text
    screenshot(driver, "12-docs")
    assert [m for m in severe_console_errors(driver) if "Content Security Policy" in m] == []


def test_lists_refresh_by_themselves_without_losing_the_open_form(driver: Any, live: LiveServer, app: Flask) -> None:
    api = Api(app.test_client())
    api.start("booking room", {"RoomObject": {"capacity": 20}}, user="carol")
    open_as(driver, live, "alice")
    card = task_card(driver, "Review booking")
    card.find_element("css selector", "[data-action='complete']").click()
    field = wait_for(driver, lambda d: card.find_elements("css selector", "[data-role='var-value']"))[-1]
    field.send_keys(" ")
    # another booking arrives; the page polls and shows it, the open form and its focus stay
    api.start("booking room", {"RoomObject": {"capacity": 2}}, user="carol")
    wait_for(driver, lambda d: len(css(d, "#task-list li[data-task-id]")) == 2)
    assert card.find_elements("css selector", "form.complete-form")
    assert driver.switch_to.active_element == field


# -- signed in with a token; a task's form ---------------------------------------------------------


def test_signed_in_with_a_token(driver: Any) -> None:
    from tests.auth_support import AUTH_CONFIG, as_user, mint

    app = make_app(MemoryBackend(), **AUTH_CONFIG)
    client = app.test_client()
    started = client.post(
        f"{BASE}/process/start",
        json={"processName": "booking room", "object": {"RoomObject": {"capacity": 4}}},
        headers=as_user("carol"),
    )
    assert ok(started)
    with serving(app) as live:
        driver.get(f"{live.url}/tasklist#/tasks")
        one(driver, "details.token summary").click()
        one(driver, "#who-user").clear()
        one(driver, "#who-token").send_keys(mint("alice", groups=["facilities"]))
        one(driver, "#who button[type='submit']").click()
        wait_for(driver, lambda d: "Signed in as alice" in one(d, "#who-info").text)
        assert "groups: facilities" in one(driver, "#who-info").text
        card = task_card(driver, "Review booking")
        card.find_element("css selector", "[data-action='claim']").click()
        one(driver, "#queues button[data-queue='user:alice']").click()
        wait_for(
            driver, lambda d: task_card(d, "Review booking").find_element("css selector", ".assignee").text == "alice"
        )
        screenshot(driver, "13-signed-in-with-a-token")
        # without the token the API refuses, and the page says so in place
        driver.execute_script("sessionStorage.clear()")
        driver.get(f"{live.url}/tasklist?user=alice#/tasks")
        message = wait_for(driver, lambda d: one(d, "#tasks-error").text)
        assert "UNAUTHORIZED" in message and "HTTP 401" in message
    driver.execute_script("sessionStorage.clear()")


FORM_BPMN = b"""<?xml version="1.0" encoding="UTF-8"?>
<definitions xmlns="http://www.omg.org/spec/BPMN/20100524/MODEL"
             xmlns:camunda="http://camunda.org/schema/1.0/bpmn" id="d" targetNamespace="t">
  <process id="formed" name="formed" isExecutable="true">
    <startEvent id="s"/><sequenceFlow id="f1" sourceRef="s" targetRef="review"/>
    <userTask id="review" name="Review with a form" camunda:candidateGroups="facilities">
      <extensionElements>
        <camunda:formData>
          <camunda:formField id="comment" label="Comment" type="string">
            <camunda:validation><camunda:constraint name="required"/></camunda:validation>
          </camunda:formField>
          <camunda:formField id="seats" label="Seats" type="long" defaultValue="4"/>
          <camunda:formField id="approved" label="Approved" type="boolean"/>
          <camunda:formField id="size" label="Size" type="enum">
            <camunda:value id="small" name="Small room"/><camunda:value id="big" name="Big room"/>
          </camunda:formField>
        </camunda:formData>
      </extensionElements>
    </userTask>
    <sequenceFlow id="f2" sourceRef="review" targetRef="e"/><endEvent id="e"/>
  </process>
</definitions>"""
#: the form of FORM_BPMN's task in the shape of API.md "Forms and queries"
FORM = {
    "formKey": None,
    "fields": [
        {"id": "comment", "label": "Comment", "type": "string", "defaultValue": None, "required": True, "values": []},
        {"id": "seats", "label": "Seats", "type": "long", "defaultValue": 4, "required": False, "values": []},
        {
            "id": "approved",
            "label": "Approved",
            "type": "boolean",
            "defaultValue": None,
            "required": False,
            "values": [],
        },
        {
            "id": "size",
            "label": "Size",
            "type": "enum",
            "defaultValue": None,
            "required": False,
            "values": [{"id": "small", "name": "Small room"}, {"id": "big", "name": "Big room"}],
        },
    ],
}


def _form_route(app: Flask) -> None:
    """Where the service has no ``GET …/tasks/<id>/form`` yet (another change adds it), serve API.md's shape."""
    adapter = app.url_map.bind("localhost")
    try:
        adapter.match(f"{BASE}/tasks/x/form", method="GET")
        return  # the real route
    except Exception:
        pass

    def form(task_id: str) -> Any:
        from bpm.api.envelope import envelope

        return envelope(FORM)

    app.add_url_rule(f"{BASE}/tasks/<task_id>/form", "test_task_form", form)


def test_completing_with_the_tasks_form(driver: Any) -> None:
    app = make_app(MemoryBackend())
    _form_route(app)
    api = Api(app.test_client())
    api.identity("alice", groups=["facilities"])
    ok(api.post("/deployments", data=FORM_BPMN, content_type="application/xml", query_string={"fileName": "f.bpmn"}))
    instance_id = ok(api.post("/process/start", json={"processName": "formed"}, query_string={"user": "carol"}))
    with serving(app) as live:
        _complete_with_the_form(driver, live, api, instance_id)


def _complete_with_the_form(driver: Any, live: LiveServer, api: Api, instance_id: str) -> None:
    open_as(driver, live, "alice")
    card = task_card(driver, "Review with a form")
    card.find_element("css selector", "[data-action='complete']").click()
    form = wait_for(driver, lambda d: card.find_elements("css selector", "form.complete-form"))[0]
    fields = {f.get_attribute("data-field"): f for f in form.find_elements("css selector", "[data-field]")}
    assert list(fields) == ["comment", "seats", "approved", "size"]
    comment = fields["comment"].find_element("css selector", "input")
    assert comment.get_attribute("required") is not None and comment == driver.switch_to.active_element
    assert fields["seats"].find_element("css selector", "input").get_attribute("value") == "4"
    assert fields["seats"].find_element("css selector", "input").get_attribute("type") == "number"
    assert fields["comment"].find_element("css selector", "label").text.startswith("Comment")
    form.find_element("css selector", "[data-action='submit-complete']").click()
    wait_for(driver, lambda d: comment.get_attribute("aria-invalid") == "true")
    assert "Required" in fields["comment"].text
    comment.send_keys("fits <b>well</b>")
    assert comment.get_attribute("aria-invalid") is None and "Required" not in fields["comment"].text
    assert "null" not in card.find_element("css selector", ".summary").text
    fields["approved"].find_element("css selector", "input").click()
    from selenium.webdriver.support.ui import Select

    Select(fields["size"].find_element("css selector", "select")).select_by_visible_text("Big room")
    screenshot(driver, "14-task-form")
    form.find_element("css selector", "[data-action='submit-complete']").click()
    wait_for(
        driver, lambda d: not [c for c in css(d, "#task-list li[data-task-id] h3") if c.text == "Review with a form"]
    )
    variables = ok(api.get(f"/instance/{instance_id}"))["variables"]
    assert {k: variables[k] for k in ("comment", "seats", "approved", "size")} == {
        "comment": "fits <b>well</b>",
        "seats": 4,
        "approved": True,
        "size": "big",
    }


# -- paging, sorting, filtering; incidents; labels -------------------------------------------------


DASH = "\N{EN DASH}"  # the page's range separator, as in 1-10 of 12
UNLABELLED = """
return [...document.querySelectorAll('input, select, textarea, button')].filter((e) => {
  if (e.type === 'hidden') return false;
  const named = (e.labels && e.labels.length) || e.getAttribute('aria-label') || e.getAttribute('aria-labelledby')
    || (e.tagName === 'BUTTON' && e.textContent.trim());
  return !named;
}).map((e) => e.outerHTML.slice(0, 80));
"""


def test_paging_sorting_and_the_process_filter(driver: Any, live: LiveServer, app: Flask) -> None:
    from selenium.webdriver.support.ui import Select

    api = Api(app.test_client())
    for capacity in range(12):
        api.start("booking room", {"RoomObject": {"capacity": capacity}}, user=f"user{capacity:02d}")
    ok(api.post("/process/parallel%20review/start", json={}, query_string={"user": "carol"}))
    api.identity("alice", groups=["facilities", "reviewers"])
    open_as(driver, live, "alice")
    assert driver.execute_script(UNLABELLED) == []
    Select(one(driver, "#main select[id^='size']")).select_by_visible_text("10")
    wait_for(driver, lambda d: len(css(d, "#task-list li[data-task-id]")) == 10)
    total = int(one(driver, "#queues button[data-queue='user:alice'] .count").text)
    assert total >= 12 and one(driver, "#page-info").text == f"1{DASH}10 of {total}"
    assert one(driver, "#page-prev").get_attribute("disabled") is not None
    one(driver, "#page-next").click()
    wait_for(driver, lambda d: one(d, "#page-info").text == f"11{DASH}{total} of {total}")
    assert len(css(driver, "#task-list li[data-task-id]")) == total - 10
    # oldest first
    Select(one(driver, "#main select[id^='sort']")).select_by_visible_text("Created")
    Select(one(driver, "#main select[id^='order']")).select_by_visible_text("Ascending")
    wait_for(driver, lambda d: one(d, "#page-info").text == f"1{DASH}10 of {total}")
    times = [int(json_task(li)["createTime"]) for li in css(driver, "#task-list li[data-task-id]")]
    assert times == sorted(times)
    # only the booking process
    Select(one(driver, "[data-role='process-filter']")).select_by_visible_text("booking room")
    wait_for(
        driver,
        lambda d: (
            {json_task(li)["definitionId"].split(":")[0] for li in css(d, "#task-list li[data-task-id]")}
            == {"bookingRoom"}
        ),
    )
    screenshot(driver, "15-paging-and-filter")


def json_task(li: Any) -> dict[str, Any]:
    import json

    return json.loads(li.get_attribute("data-json"))


EXTERNAL = b"""<?xml version="1.0" encoding="UTF-8"?>
<definitions xmlns="http://www.omg.org/spec/BPMN/20100524/MODEL"
             xmlns:camunda="http://camunda.org/schema/1.0/bpmn" id="d" targetNamespace="t">
  <process id="payment" name="payment" isExecutable="true">
    <startEvent id="s"/><sequenceFlow id="f1" sourceRef="s" targetRef="charge"/>
    <serviceTask id="charge" name="Charge card" camunda:type="external" camunda:topic="pay"/>
    <sequenceFlow id="f2" sourceRef="charge" targetRef="e"/><endEvent id="e"/>
  </process>
</definitions>"""


def test_an_incident_is_shown_and_retried(driver: Any, live: LiveServer, app: Flask) -> None:
    api = Api(app.test_client())
    ok(api.post("/deployments", data=EXTERNAL, content_type="application/xml", query_string={"fileName": "pay.bpmn"}))
    instance_id = ok(api.post("/process/start", json={"processName": "payment"}))
    lock = {"workerId": "w1", "maxTasks": 1, "topics": [{"topicName": "pay", "lockDuration": 60000}]}
    [locked] = ok(api.post("/external-task/fetchAndLock", json=lock))
    failure = {"workerId": "w1", "errorMessage": "card gateway down", "retries": 0, "retryTimeout": 0}
    ok(api.post(f"/external-task/{locked['id']}/failure", json=failure))
    driver.get(f"{live.url}/tasklist?user=ops#/instance/{instance_id}")
    wait_for(driver, lambda d: "card gateway down" in one(d, "#incidents").text)
    charge = one(driver, "#instance-diagram g[data-element-id='charge']")
    assert "bpm-incident" in charge.get_attribute("class")
    assert "retries 0" in driver.find_element("css selector", ".instance").text
    assert driver.execute_script(UNLABELLED) == []
    screenshot(driver, "16-incident")
    one(driver, "#incidents [data-action='retry']").click()
    wait_for(driver, lambda d: not css(d, "#incidents"))
    assert ok(api.get(f"/instance/{instance_id}/incidents")) == []
    assert "bpm-incident" not in one(driver, "#instance-diagram g[data-element-id='charge']").get_attribute("class")
