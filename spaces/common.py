"""What every tab shares."""

import gradio as gr


def user_error(message: str) -> gr.Error:
    """A gr.Error for bad user input: shown in the page, not printed as a server traceback (it is not a bug)."""
    return gr.Error(message, print_exception=False)
