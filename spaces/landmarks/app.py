from dlhub.space import build_demo
demo = build_demo(["landmarks"])
demo.launch()
