// Keyward's dashboard: the copy button of a key's reveal. Everything else
// works without JavaScript.
document.addEventListener("click", async (e) => {
  const button = e.target.closest("button[data-copy]");
  if (!button) return;
  const field = document.getElementById(button.dataset.copy);
  const status = button.parentElement.querySelector(".copied");
  field.select();
  try {
    await navigator.clipboard.writeText(field.value);
    status.textContent = "Copied.";
  } catch {
    status.textContent = "Selected: press Ctrl+C (⌘C) to copy.";
  }
});

// A button with data-confirm asks first; without JavaScript the form is
// sent as it is (the revocation of a key has a page of its own instead).
document.addEventListener("submit", (e) => {
  const button = e.submitter;
  if (button && button.dataset.confirm && !window.confirm(button.dataset.confirm)) e.preventDefault();
});
