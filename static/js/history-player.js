/**
 * The conversation page's recording: a line's time button plays from there, and the line being
 * played is marked (class "playing" and aria-current) as the audio moves.
 */
import { activeLine, byStart } from "./recording/active-line.js";

const audio = document.getElementById("recording-audio");

/** The transcript lines that have a place in the recording, in the order the recording plays them. */
function timeline() {
  const buttons = document.querySelectorAll(".dialogue .line button[data-seek-ms]");
  return byStart([...buttons].map((button) => ({
    button,
    line: button.closest(".line"),
    startMs: Number.parseInt(button.dataset.seekMs, 10),
  })));
}

if (audio) {
  const marks = timeline();
  const starts = marks.map((mark) => mark.startMs / 1000);
  let current = null;

  /** Marks the line whose stretch of the recording holds the current time, and unmarks the last one. */
  const follow = () => {
    const index = activeLine(starts, audio.currentTime);
    const line = index >= 0 ? marks[index].line : null;
    if (line === current) return;
    if (current) {
      current.classList.remove("playing");
      current.removeAttribute("aria-current");
    }
    if (line) {
      line.classList.add("playing");
      line.setAttribute("aria-current", "true");
    }
    current = line;
  };

  for (const { button, startMs } of marks) {
    button.addEventListener("click", () => {
      audio.currentTime = startMs / 1000;
      follow();
      // A click is a user gesture, so autoplay rules allow this; a failure (no audio device) leaves the seek.
      audio.play().catch(() => {});
    });
  }
  for (const event of ["timeupdate", "seeked", "play"]) audio.addEventListener(event, follow);
}
