"""The Space in a real browser (Debian's Chromium, headless, driven by Playwright): tabs, the σ slider, warnings.

Set DLHUB_SCREENSHOTS=docs/screenshots to keep a screenshot of each tab.
"""

import os
import shutil
from pathlib import Path

import pytest

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run", "--disable-sync"]
pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture(scope="module")
def playwright():
    """One Playwright driver for the module (its sync API cannot be started twice in one thread)."""
    sync_api = pytest.importorskip("playwright.sync_api")
    if not Path(CHROMIUM).exists():
        pytest.fail("Debian's chromium is not installed: run `make install-dev` (it reads packages-dev.txt)")
    with sync_api.sync_playwright() as p:
        yield p


@pytest.fixture(scope="module")
def page(space_url, playwright):
    browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
    page = browser.new_page(viewport={"width": 1300, "height": 1000})
    page.goto(space_url)
    yield page
    browser.close()


def no_errors(page):
    assert page.locator(".toast-body.error").count() == 0, page.locator(".toast-body").all_inner_texts()
    assert page.get_by_text("Traceback").count() == 0


def close_toasts(page):
    """Close every toast, first to last. A toast may also time out and vanish on its own meanwhile (Gradio's toasts
    have a duration), so the list is read again after each click rather than once."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    for _ in range(10):
        if page.locator(".toast-close").count() == 0:
            return
        try:
            page.locator(".toast-close").first.click(timeout=5_000)
        except PlaywrightTimeout:  # it vanished between the count and the click
            pass
    assert page.locator(".toast-close").count() == 0, page.locator(".toast-body").all_inner_texts()


def screenshot(page, name):
    folder = os.environ.get("DLHUB_SCREENSHOTS")
    if folder:
        close_toasts(page)  # a toast left by an earlier test is not this tab's
        Path(folder).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(folder) / f"{name}.png"), full_page=True)


def test_regression_tab_refits_when_sigma_moves(page):
    summary = page.locator("#fit-summary")
    summary.get_by_text("OLS validation MSE").wait_for(timeout=60_000)
    page.locator("#train-summary").get_by_text("test accuracy").first.wait_for(timeout=60_000)
    assert "Bundled model — dlhub-course/task1-regression is not on the Hub yet" in page.inner_text("body")
    plot = page.locator("#fit-plot img")
    before_src, before_text = plot.get_attribute("src"), summary.inner_text()
    number = page.locator("#sigma-slider input[type=number]")
    number.fill("150")
    number.press("Enter")
    page.wait_for_function("() => document.querySelector('#fit-summary').innerText.includes('σ = 150,')",
                           timeout=30_000)
    page.wait_for_function("(old) => { const img = document.querySelector('#fit-plot img');"
                           " return img && img.src !== old; }", arg=before_src, timeout=30_000)
    assert summary.inner_text() != before_text
    screenshot(page, "regression")
    no_errors(page)


def test_exercises_tab_opens_on_the_course_question_and_warns_on_text(page):
    page.get_by_role("tab", name="Exercises").click()
    result = page.locator("#mlp-result")
    result.get_by_text("Check against torch autograd").wait_for(timeout=30_000)
    text = result.inner_text()
    assert text.count("✓ yes") == 3 and "0.6271" in text and "0.9866" in text and "−0.2251" in text
    page.locator("#z-plot img").wait_for(timeout=30_000)
    screenshot(page, "exercises")
    x1 = page.locator("#ex-x1 textarea, #ex-x1 input").first
    x1.fill("abc")
    x1.press("Enter")
    page.get_by_text("Not a finite number: x1").first.wait_for(timeout=15_000)
    page.wait_for_function("() => !document.querySelector('#mlp-result').innerText.includes('0.6271')",
                           timeout=15_000)  # the old result is cleared
    no_errors(page)
    x1.fill("2")
    with page.expect_response(lambda r: "/queue/join" in r.url) as computed:
        page.locator("#ex-compute").click()  # leaving the field and clicking computes once, not twice
    assert computed.value.ok
    page.wait_for_function("() => document.querySelector('#mlp-result').innerText.includes('s3 = 2 · 0.4')",
                           timeout=15_000)
    no_errors(page)


def test_two_pages_denoise_at_the_same_time(space_url, playwright, tmp_path):
    """Two people on the denoising tab at once: both see their PSNR (the metric is computed per request)."""
    from conftest import synthetic_faces
    from PIL import Image

    browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
    try:
        pages = [browser.new_page(viewport={"width": 1300, "height": 1000}) for _ in range(2)]
        for i, page in enumerate(pages):
            page.goto(space_url)
            page.get_by_role("tab", name="Face denoising").click()
            Image.fromarray(synthetic_faces(1, size=128, seed=i)[0]).save(tmp_path / f"face{i}.png")
        for i, page in enumerate(pages):  # both uploads before either answer arrives
            page.locator("#denoise-input input[type=file]").set_input_files(str(tmp_path / f"face{i}.png"))
        for page in pages:
            page.locator("#denoise-psnr").get_by_text("PSNR against the clean image").wait_for(timeout=60_000)
            assert "dB" in page.locator("#denoise-psnr").inner_text()
            no_errors(page)
    finally:
        browser.close()


def test_denoising_tab_psnr_follows_the_slider(page, tmp_path):
    from conftest import synthetic_faces
    from PIL import Image

    page.get_by_role("tab", name="Face denoising").click()
    face = tmp_path / "face.png"
    Image.fromarray(synthetic_faces(1, size=128)[0]).save(face)
    page.locator("#denoise-input input[type=file]").set_input_files(str(face))
    summary = page.locator("#denoise-psnr")
    summary.get_by_text("σ = 0.20").wait_for(timeout=60_000)
    before = summary.inner_text()
    number = page.locator("#denoise-sigma input[type=number]")
    number.fill("0.45")
    number.press("Enter")
    summary.get_by_text("σ = 0.45").wait_for(timeout=30_000)
    assert summary.inner_text() != before and "denoised" in summary.inner_text()
    screenshot(page, "denoising")
    no_errors(page)


def test_signs_tab_reads_an_uploaded_sign_and_a_bad_file_clears_it_with_one_message(page, tmp_path):
    from dlhub.sign_drawings import draw_sign

    page.get_by_role("tab", name="Traffic signs").click()
    sign = tmp_path / "no_entry.png"
    draw_sign(17, 96, seed=5).save(sign)
    page.locator("#signs-input input[type=file]").set_input_files(str(sign))
    page.locator("#signs-label").get_by_text("No entry").first.wait_for(timeout=60_000)
    screenshot(page, "signs")
    no_errors(page)
    fake = tmp_path / "notes.png"
    fake.write_text("a text file renamed .png")
    page.locator("#signs-input input[type=file]").set_input_files(str(fake))
    page.locator(".toast-body.error").first.wait_for(timeout=30_000)
    page.wait_for_timeout(2000)  # a second toast for the same error would have arrived by now
    errors = page.locator(".toast-body.error").all_inner_texts()
    assert len(errors) == 1 and "not an image that can be read" in errors[0], errors
    page.wait_for_function("() => !document.querySelector('#signs-label').innerText.includes('No entry')",
                           timeout=15_000)  # the previous answer is gone
    assert page.locator("#signs-note").inner_text().strip() == ""
    close_toasts(page)


@pytest.mark.parametrize("tab,box", [("Traffic signs", "#signs-input"), ("Face denoising", "#denoise-input")])
def test_image_tabs_run_once_per_photo_and_example_and_a_removed_photo_is_quiet(page, tmp_path, tab, box):
    """Gradio 6 fires an image's change event twice when one image replaces another: the tabs listen to the visitor's
    input and to the examples instead, so each new photo, replacement or example is one request, and the × empties the
    outputs without an error."""
    from conftest import synthetic_faces
    from PIL import Image

    from dlhub.sign_drawings import draw_sign

    page.get_by_role("tab", name=tab).click()
    photos = [tmp_path / f"photo{i}.png" for i in range(2)]
    for i, path in enumerate(photos):
        (draw_sign(17 - 3 * i, 96, seed=i) if "signs" in box else Image.fromarray(synthetic_faces(1, 96, seed=i)[0]))\
            .save(path)
    joins = []

    def count(request):
        if "/queue/join" in request.url:
            joins.append(request.url)

    page.on("request", count)
    actions = [lambda: page.locator(f"{box} input[type=file]").set_input_files(str(photos[0])),
               lambda: page.locator(f"{box} input[type=file]").set_input_files(str(photos[1])),  # a replacement
               lambda: page.locator(f"{box} button[aria-label='Remove Image']").click(),
               lambda: page.locator("button.gallery-item:visible, tr.tr-body:visible").first.click()]
    for action in actions:
        joins.clear()
        action()
        page.wait_for_timeout(4000)  # a second request for the same action would have been sent by now
        assert len(joins) == 1, (tab, len(joins))
        no_errors(page)
    page.remove_listener("request", count)
    close_toasts(page)


def test_bad_upload_shows_an_error_and_the_space_keeps_serving(page, space_url, tmp_path):
    import numpy as np

    page.goto(space_url)
    page.locator("#fit-summary").get_by_text("OLS validation MSE").wait_for(timeout=60_000)
    page.locator("#train-summary").get_by_text("test accuracy").first.wait_for(timeout=120_000)
    bad = tmp_path / "Task1_1.npz"
    np.savez(bad, X_trn=np.ones((3, 1)))
    page.locator("#regression-file input[type=file]").set_input_files(str(bad))
    error = page.locator(".toast-body.error")
    error.first.wait_for(timeout=30_000)
    assert "missing keys ['Y_trn', 'X_val', 'Y_val']" in error.first.inner_text()
    # the refused file leaves its box and part 1.1 goes back to example data; part 1.2 (the other file) keeps its answer
    page.locator("#regression-file input[type=file]").wait_for(state="attached", timeout=30_000)
    page.wait_for_function("() => document.querySelector('#fit-summary').innerText.includes('example data')",
                           timeout=30_000)
    assert "test accuracy" in page.locator("#train-summary").inner_text()
    number = page.locator("#sigma-slider input[type=number]")  # the server still answers
    number.fill("12")
    number.press("Enter")
    page.wait_for_function("() => document.querySelector('#fit-summary').innerText.includes('σ = 12,')",
                           timeout=30_000)
    close_toasts(page)  # the page is shared: the next test starts with no message of this one


def speaking_browser(playwright, tmp_path, word: str, voice: str = "en-us"):
    """Chromium whose fake microphone plays an espeak-ng recording of `word` (48 kHz, with silence around it)."""
    import numpy as np
    from espeak import speak, write_wav

    from dlhub import audio

    x, rate = speak(word, voice, silence_s=0.6)
    wav = write_wav(tmp_path / f"{word}.wav", np.round(audio.resample(x / 32768, rate, 48000) * 32767).astype(np.int16),
                    48000)
    microphone = ["--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
                  f"--use-file-for-fake-audio-capture={wav}"]
    return playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS + microphone)


def record_a_word(page, space_url) -> None:
    """Open the commands tab, record 2.5 s from the microphone and stop (the recording is then recognised)."""
    page.goto(space_url)
    page.get_by_role("tab", name="Voice commands").click()
    box = page.locator("#commands-input")
    box.get_by_role("button", name="Record", exact=True).click()
    page.wait_for_timeout(2500)  # the file is about 2 s long: at least one whole word
    box.get_by_role("button", name="Stop", exact=True).click()


def test_commands_tab_records_from_a_fake_microphone(space_url, playwright, tmp_path):
    """Chromium's fake microphone plays an espeak-ng recording of "left"; the test records, stops, submits, and
    reads the word from the page."""
    browser = speaking_browser(playwright, tmp_path, "left")
    try:
        page = browser.new_page(viewport={"width": 1300, "height": 1000})
        record_a_word(page, space_url)
        verdict = page.locator("#commands-verdict")
        verdict.get_by_text("left").first.wait_for(timeout=60_000)  # a finished recording is recognised at once
        with page.expect_response(lambda r: "/queue/join" in r.url) as submitted:  # and again on demand
            page.locator("#commands-submit").click()
        assert submitted.value.ok
        page.wait_for_timeout(3000)  # an error (e.g. the recording not received) would show as a toast by now
        verdict.get_by_text("left").first.wait_for(timeout=60_000)
        assert "left" in page.locator("#commands-label").inner_text()
        no_errors(page)
        screenshot(page, "commands")
    finally:
        browser.close()


def test_commands_tab_says_hello_is_not_a_command(space_url, playwright, tmp_path):
    """The fake microphone says "hello": speech, but none of the ten words → "Not a command word"."""
    browser = speaking_browser(playwright, tmp_path, "hello", "en")
    try:
        page = browser.new_page(viewport={"width": 1300, "height": 1000})
        record_a_word(page, space_url)
        page.locator("#commands-verdict").get_by_text("Not a command word").wait_for(timeout=60_000)
        assert "unknown" in page.locator("#commands-label").inner_text()
        no_errors(page)
    finally:
        browser.close()


def test_landmarks_tab_finds_68_points_on_the_astronaut(page, space_url, tmp_path):
    from PIL import Image
    from skimage import data

    page.goto(space_url)  # a fresh page: no toast left by the bad-upload test
    page.get_by_role("tab", name="Face landmarks").click()
    photo = tmp_path / "astronaut.png"
    Image.fromarray(data.astronaut()).save(photo)
    page.locator("#landmarks-input input[type=file]").set_input_files(str(photo))
    page.locator("#landmarks-summary").get_by_text("1 face").wait_for(timeout=60_000)
    page.get_by_text("Coordinates (pixels of the photo)").click()
    link = page.locator("#landmarks-csv a").first
    link.wait_for(timeout=30_000)
    rows = page.request.get(link.get_attribute("href")).text().strip().splitlines()
    assert rows[0] == "face,point,x,y" and len(rows) == 1 + 68
    points = [tuple(map(float, r.split(",")[2:])) for r in rows[1:]]
    assert all(140 < x < 350 and 20 < y < 280 for x, y in points), points  # all inside her face (box ≈ 175–320)
    screenshot(page, "landmarks")
    no_errors(page)
