from dlhub.space import build_demo
demo = build_demo(["signs"])
demo.launch()
