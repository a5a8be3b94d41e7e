"""Train-step throughput of the PyTorch peer's from-scratch models, beside `python -m jreid.bench train_step`.

  python benchmarks/peer_step.py PEER_DIR [--batch 32] [--size 96,48] [--steps 50]

PEER_DIR holds a copy of shared/bench/peer_reid.py. Each model (ResNet-18 with last stride 1; the cpu-preset
ViT with patch and conv stems) trains on one batch that stays on the GPU (no input pipeline): forward,
label-smoothed CE + batch-hard triplet, backward, AdamW, in fp32 (as peer_reid.py trains), eager and with
torch.compile. Steps run back to back with one synchronisation at the end. Prints images/s per model.
"""

import argparse
import sys
import time


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("peer_dir")
  parser.add_argument("--batch", type=int, default=32)
  parser.add_argument("--size", default="96,48")
  parser.add_argument("--steps", type=int, default=50)
  args = parser.parse_args()
  sys.path.insert(0, args.peer_dir)
  import peer_reid
  import torch
  import torch.nn.functional as F

  size = tuple(int(v) for v in args.size.split(","))
  models = {"resnet18": lambda: peer_reid.ResNet("resnet18"),
            "vit-patch": lambda: peer_reid.ViT(size, 8, 128, 4, 4, 256, 128, "patch"),
            "vit-conv": lambda: peer_reid.ViT(size, 8, 128, 4, 4, 256, 128, "conv")}
  x = torch.randn(args.batch, 3, *size, device="cuda")
  y = torch.arange(args.batch, device="cuda") // 4
  for name, make in models.items():
    for compiled in (False, True):
      net = peer_reid.Net(make(), 150).cuda()
      opt = torch.optim.AdamW(net.parameters(), lr=1e-3)
      forward = torch.compile(net) if compiled else net

      def step():
        f, logits = forward(x)
        loss = F.cross_entropy(logits, y, label_smoothing=0.1) + peer_reid.batch_hard(f, y, 0.3)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

      for _ in range(5):
        step()
      torch.cuda.synchronize()
      start = time.perf_counter()
      for _ in range(args.steps):
        step()
      torch.cuda.synchronize()
      seconds = (time.perf_counter() - start) / args.steps
      print(f"peer {name}{' compiled' if compiled else ''}: batch {args.batch}, {seconds * 1e3:.2f} ms/step, "
            f"{args.batch / seconds:,.0f} img/s", flush=True)


if __name__ == "__main__":
  main()
