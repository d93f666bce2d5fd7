"""The course Space: every tab (dlhub/space/). `python app.py` serves it on http://127.0.0.1:7860."""
from dlhub.space import build_demo

demo = build_demo()
if __name__ == "__main__":
    demo.launch()
