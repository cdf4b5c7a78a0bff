"""A Streamlit session over the server's own websocket protocol, as a browser tab would run it:
BackMsg rerun_script (page, query string, widget states) out, ForwardMsg deltas in, until the
run's script_finished. Enough of the protocol for bench/load.py and tests/test_server_load.py:
navigation between pages, text inputs, radios, selectboxes, checkboxes, buttons, form submits
and a file upload (file_urls_request, an HTTP PUT, the uploader's widget state)."""

from __future__ import annotations

import asyncio
import contextlib
import http.cookies
import time
import urllib.parse
import urllib.request
import uuid
from dataclasses import dataclass, field

import websockets
from streamlit.proto.BackMsg_pb2 import BackMsg
from streamlit.proto.Common_pb2 import FileUploaderState
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg
from streamlit.proto.WidgetStates_pb2 import WidgetState

EARLY_FOR_RERUN = ForwardMsg.ScriptFinishedStatus.FINISHED_EARLY_FOR_RERUN
WIDGETS = {"button", "checkbox", "text_input", "radio", "selectbox", "file_uploader",
           "download_button", "number_input", "multiselect", "date_input", "slider", "text_area"}


class Freeze(Exception):
    """No script_finished within the allowed time."""


@dataclass
class Widget:
    kind: str
    id: str
    label: str
    options: list[str]
    form_id: str
    proto: object


@dataclass
class Run:
    """What one script run sent: its elements, exceptions and error boxes, the time it took."""
    seconds: float = 0.0
    widgets: list[Widget] = field(default_factory=list)
    texts: list[str] = field(default_factory=list)
    exceptions: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    successes: list[str] = field(default_factory=list)

    def widget(self, kind: str, label: str) -> Widget:
        """The first widget of `kind` whose label starts with `label`."""
        for w in self.widgets:
            if w.kind == kind and w.label.startswith(label):
                return w
        raise LookupError(f"no {kind} labelled {label!r} among "
                          f"{[(w.kind, w.label) for w in self.widgets]}")

    def text(self) -> str:
        return "\n".join(self.texts)


def xsrf_cookie(base_url: str) -> str | None:
    """The XSRF cookie the health endpoint hands out (uploads and sign-in need it)."""
    with urllib.request.urlopen(f"{base_url}/_stcore/health", timeout=10) as response:
        for header in response.headers.get_all("Set-Cookie") or []:
            cookie = http.cookies.SimpleCookie(header)
            if "_streamlit_xsrf" in cookie:
                return cookie["_streamlit_xsrf"].value
    return None


class Session:
    """One browser tab's session. Use `async with Session(url) as s:` then `await s.run(...)`."""

    def __init__(self, base_url: str, *, freeze_after: float = 30.0) -> None:
        self.base_url = base_url
        self.freeze_after = freeze_after
        self.pages: dict[str, str] = {}          # page title → page_script_hash
        self.page_hash = ""
        self.session_id = ""
        self.states: dict[str, WidgetState] = {}
        self._xsrf: str | None = None
        self._queue: asyncio.Queue[ForwardMsg] = asyncio.Queue()
        self._ws = None
        self._reader: asyncio.Task | None = None

    async def __aenter__(self) -> Session:
        self._xsrf = await asyncio.to_thread(xsrf_cookie, self.base_url)
        url = self.base_url.replace("http", "ws", 1) + "/_stcore/stream"
        headers = {"Cookie": f"_streamlit_xsrf={self._xsrf}"} if self._xsrf else {}
        protocols = ["streamlit", self._xsrf] if self._xsrf else ["streamlit"]
        self._ws = await websockets.connect(url, subprotocols=protocols, additional_headers=headers,
                                            max_size=None, open_timeout=self.freeze_after,
                                            ping_interval=None)
        self._reader = asyncio.create_task(self._read())
        return self

    async def __aexit__(self, *exc) -> None:
        if self._reader:
            self._reader.cancel()
        if self._ws is not None:
            with contextlib.suppress(Exception):
                await self._ws.close()

    async def _read(self) -> None:
        async for data in self._ws:
            message = ForwardMsg()
            message.ParseFromString(data)
            await self._queue.put(message)

    async def _next(self, deadline: float) -> ForwardMsg:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise Freeze
        try:
            return await asyncio.wait_for(self._queue.get(), remaining)
        except TimeoutError:
            if self._reader is not None and self._reader.done() and self._reader.exception():
                raise ConnectionError(str(self._reader.exception())) from None
            raise Freeze from None

    async def run(self, page: str | None = None, *, query: str = "",
                  triggers: tuple[Widget, ...] = ()) -> Run:
        """Rerun the script (on `page`, a title from the navigation, else the current page) with
        the widget states set so far plus `triggers` (buttons, form submits) for this run only."""
        if page is not None:
            self.page_hash = self.pages[page]
        states = [*self.states.values()]
        for w in triggers:
            states.append(WidgetState(id=w.id, trigger_value=True))
        message = BackMsg()
        message.rerun_script.query_string = query
        message.rerun_script.page_script_hash = self.page_hash
        message.rerun_script.widget_states.widgets.extend(states)
        started = time.monotonic()
        await self._ws.send(message.SerializeToString())
        run = Run()
        deadline = started + self.freeze_after
        while True:
            forward = await self._next(deadline)
            kind = forward.WhichOneof("type")
            if kind == "new_session":
                run = Run()
                self.session_id = forward.new_session.initialize.session_id or self.session_id
                self.page_hash = forward.new_session.page_script_hash or self.page_hash
            elif kind == "navigation":
                self.pages = {p.page_name: p.page_script_hash
                              for p in forward.navigation.app_pages}
                self.page_hash = forward.navigation.page_script_hash or self.page_hash
            elif kind == "page_info_changed":
                pass
            elif kind == "delta" and forward.delta.WhichOneof("type") == "new_element":
                _collect(run, forward.delta.new_element)
            elif kind == "script_finished" and forward.script_finished != EARLY_FOR_RERUN:
                run.seconds = time.monotonic() - started
                return run

    # -- widgets ---------------------------------------------------------------------------

    def set_text(self, widget: Widget, value: str) -> None:
        self.states[widget.id] = WidgetState(id=widget.id, string_value=value)

    def choose(self, widget: Widget, option: str) -> None:
        """A radio or selectbox option, by its shown label (or the first that starts with it)."""
        label = next(o for o in widget.options if o.startswith(option))
        self.states[widget.id] = WidgetState(id=widget.id, string_value=label)

    def tick(self, widget: Widget, value: bool = True) -> None:
        self.states[widget.id] = WidgetState(id=widget.id, bool_value=value)

    async def upload(self, widget: Widget, name: str, data: bytes) -> None:
        """Put `data` into a file uploader as the browser does: ask for an upload URL, PUT the
        file, and hold the uploader's state (sent with the next run)."""
        request = BackMsg()
        request.file_urls_request.request_id = uuid.uuid4().hex
        request.file_urls_request.file_names.append(name)
        request.file_urls_request.session_id = self.session_id
        await self._ws.send(request.SerializeToString())
        deadline = time.monotonic() + self.freeze_after
        while True:
            forward = await self._next(deadline)
            if forward.WhichOneof("type") == "file_urls_response":
                break
        urls = forward.file_urls_response.file_urls[0]
        await asyncio.to_thread(self._put, urls.upload_url, name, data)
        state = FileUploaderState()
        info = state.uploaded_file_info.add()
        info.file_id, info.name, info.size = urls.file_id, name, len(data)
        info.file_urls.CopyFrom(urls)
        self.states[widget.id] = WidgetState(id=widget.id, file_uploader_state_value=state)

    def _put(self, upload_url: str, name: str, data: bytes) -> None:
        boundary = uuid.uuid4().hex
        body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; "
                f"filename=\"{urllib.parse.quote(name)}\"\r\nContent-Type: application/octet-stream"
                f"\r\n\r\n").encode() + data + f"\r\n--{boundary}--\r\n".encode()
        url = upload_url if upload_url.startswith("http") else self.base_url + upload_url
        headers = {"Content-Type": f"multipart/form-data; boundary={boundary}"}
        if self._xsrf:
            headers |= {"X-Xsrftoken": self._xsrf, "Cookie": f"_streamlit_xsrf={self._xsrf}"}
        request = urllib.request.Request(url, data=body, method="PUT", headers=headers)
        with urllib.request.urlopen(request, timeout=self.freeze_after) as response:
            response.read()


def _collect(run: Run, element) -> None:
    kind = element.WhichOneof("type")
    if kind == "exception":
        run.exceptions.append(f"{element.exception.type}: {element.exception.message}")
    elif kind == "alert":
        body = element.alert.body
        run.texts.append(body)
        if element.alert.format == 1:          # Alert.ERROR
            run.errors.append(body)
        elif element.alert.format == 4:        # Alert.SUCCESS
            run.successes.append(body)
    elif kind in ("markdown", "heading", "text"):
        run.texts.append(getattr(element, kind).body)
    elif kind == "metric":
        run.texts.append(f"{element.metric.label} {element.metric.body}")
    elif kind in WIDGETS:
        proto = getattr(element, kind)
        run.widgets.append(Widget(kind, proto.id, getattr(proto, "label", ""),
                                  list(getattr(proto, "options", []) or []),
                                  getattr(proto, "form_id", ""), proto))
