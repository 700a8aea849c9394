"""What this Python can run and how to install the rest: the dependency folder of the QGIS
profile, the safe installer, the NVIDIA probe and the environment check (the top room: it
opens a real ONNX Runtime session to prove the learned fills work)."""
