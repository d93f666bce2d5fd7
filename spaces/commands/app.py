from dlhub.space import build_demo
demo = build_demo(["commands"])
demo.launch()
