"""digits_cnn: its LayerLab training run as a plain PyTorch script.

Run: python train.py [--out DIR] [--device cpu]
Prints one line per epoch and writes DIR/weights.safetensors (and DIR/history.json).
On the CPU it reproduces the run (seed 0): the same losses and the same final weights.
"""

import argparse
import json
import math
from collections import OrderedDict
from pathlib import Path

import numpy as np
import torch
from torch import nn

SEED = 0
BATCH_SIZE = 64
EPOCHS = 3

parser = argparse.ArgumentParser(description="Train the model as its LayerLab run did.")
parser.add_argument("--out", type=Path, default=Path("."), help="folder for weights.safetensors")
parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu", help="cpu reproduces the run exactly")
args = parser.parse_args()
out_dir, device = args.out, torch.device(args.device)


def load_digits_images() -> tuple[np.ndarray, np.ndarray, list[str] | None]:
    """scikit-learn's 8×8 digits as (N, 1, 8, 8) images in [0, 1]."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    x = (bunch.images / 16.0).astype(np.float32)[:, None, :, :]  # (N, 1, 8, 8)
    return x, bunch.target.astype(np.int64), [str(int(t)) for t in bunch.target_names]


x, y, class_names = load_digits_images()
# A seeded shuffle of the samples; the first 20% of it is held out for validation.
order = np.random.default_rng(SEED).permutation(len(x))
n_val = min(max(round(len(x) * 0.2), 1), len(x) - 1)
x_train, y_train = x[order[n_val:]], y[order[n_val:]]
x_val, y_val = x[order[:n_val]], y[order[:n_val]]
x_train, x_val = x_train.astype(np.float32), x_val.astype(np.float32)  # float32, as the weights are (and a fresh, compact copy)

# Standardize each channel with statistics of the training split only: validation stands for unseen data.
mean = x_train.mean(axis=(0, 2, 3), keepdims=True, dtype=np.float64)[0]
std = x_train.std(axis=(0, 2, 3), keepdims=True, dtype=np.float64)[0]
std = np.where(std < 1e-8, 1.0, std)  # a constant feature is only centred
mean, std = mean.astype(np.float32), std.astype(np.float32)
x_train, x_val = (x_train - mean) / std, (x_val - mean) / std


# Small enough to live on the device whole: a batch is an index slice of a random permutation,
# which skips a DataLoader's per-sample collation.
x_train, y_train = torch.from_numpy(x_train).to(device), torch.from_numpy(y_train).to(device)
x_val, y_val = torch.from_numpy(x_val).to(device), torch.from_numpy(y_val).to(device)
shuffle = torch.Generator().manual_seed(SEED)  # its own generator: the order ignores dropout's draws
# A last training batch of one sample breaks BatchNorm's batch statistics: drop that one sample.
n_used = len(x_train) - 1 if len(x_train) % BATCH_SIZE == 1 else len(x_train)
steps_per_epoch = math.ceil(n_used / BATCH_SIZE)
total_steps = EPOCHS * steps_per_epoch


def build_model() -> nn.Module:
    torch.manual_seed(0)
    model = nn.Sequential(OrderedDict([
        ('conv1', nn.Conv2d(1, 16, kernel_size=3, padding=1)),  # -> (16, 8, 8)
        ('bn1', nn.BatchNorm2d(16)),  # -> (16, 8, 8)
        ('relu1', nn.ReLU()),  # -> (16, 8, 8)
        ('conv2', nn.Conv2d(16, 32, kernel_size=3, padding=1)),  # -> (32, 8, 8)
        ('bn2', nn.BatchNorm2d(32)),  # -> (32, 8, 8)
        ('relu2', nn.ReLU()),  # -> (32, 8, 8)
        ('pool', nn.MaxPool2d(2)),  # -> (32, 4, 4)
        ('flatten', nn.Flatten()),  # -> (512,)
        ('drop', nn.Dropout(p=0.25)),  # -> (512,)
        ('fc', nn.Linear(512, 10)),  # -> (10,)
    ]))
    return model


model = build_model().to(device)  # seeded inside: the run's initial weights
torch.manual_seed(SEED)  # dropout draws from the seed as in the run (the model was built on a fork)

n_params = sum(p.numel() for p in model.parameters())
n_trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
print(f"{n_params:,} parameters, {n_trainable:,} trainable")


# Only trainable parameters go to the optimizer: frozen ones cannot move, whatever momentum or decay do.
trainable = [p for p in model.parameters() if p.requires_grad]
# Weight decay pulls weight matrices and filters toward zero; biases and norm scales and shifts
# are exempt (decaying them only limits what a layer can represent).
decay, no_decay = [], []
for module in model.modules():
    for p in module.parameters(recurse=False):
        if not p.requires_grad:
            continue  # frozen
        if p.ndim >= 2 and not isinstance(module, nn.BatchNorm2d):
            decay.append(p)  # weight matrices and filters
        else:
            no_decay.append(p)  # biases, norm scales and shifts
# AdamW: Adam with the weight decay applied to the weights directly (decoupled).
optimizer = torch.optim.AdamW([
    {"params": decay, "weight_decay": 0.01},
    {"params": no_decay, "weight_decay": 0.0},
], lr=0.001)

loss_fn = nn.CrossEntropyLoss()  # raw logits in: log-softmax and NLL in one stable step


def lr_factor(step: int) -> float:
    """The lr multiplier at an optimizer step: a linear warm-up over 20 steps, then cosine decay to 0."""
    if step < 20:
        return (step + 1) / 20
    progress = min((step - 20) / max(total_steps - 20, 1), 1.0)
    return 0.5 * (1.0 + math.cos(math.pi * progress))


scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_factor)  # stepped once per batch


history = []
step = 0
for epoch in range(1, EPOCHS + 1):
    model.train()  # dropout on; BatchNorm normalizes with batch statistics and updates its running ones
    loss_sum, seen = torch.zeros((), device=device), 0  # summed on the device: no sync per step
    order = torch.randperm(len(x_train), generator=shuffle).to(device)[:n_used]
    for i in range(steps_per_epoch):
        idx = order[i * BATCH_SIZE : (i + 1) * BATCH_SIZE]
        xb, yb = x_train[idx], y_train[idx]  # (B, 1, 8, 8), (B,)
        optimizer.zero_grad(set_to_none=True)  # gradients add up across backward() calls otherwise
        out = model(xb)  # (B, 10)
        loss = loss_fn(out, yb)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(trainable, 1.0)  # rescale if the gradients' total norm is larger
        optimizer.step()
        scheduler.step()
        step += 1
        loss_sum += loss.detach() * len(yb)
        seen += len(yb)
    train_loss = loss_sum.item() / seen

    model.eval()  # dropout off; BatchNorm uses its running statistics
    with torch.inference_mode():  # no autograd graph: faster, less memory
        loss_sum, correct, n = torch.zeros((), device=device), 0, 0
        for i in range(0, len(x_val), BATCH_SIZE):
            xb, yb = x_val[i : i + BATCH_SIZE], y_val[i : i + BATCH_SIZE]
            out = model(xb)
            loss_sum += loss_fn(out, yb) * len(yb)
            correct += (out.argmax(dim=1) == yb).sum()
            n += len(yb)
    val_loss = loss_sum.item() / n
    val_accuracy = int(correct) / n
    history.append({"epoch": epoch, "train_loss": train_loss, "val_loss": val_loss, "val_accuracy": val_accuracy})
    print(f"epoch {epoch} train_loss {train_loss:.6f} val_loss {val_loss:.6f} val_accuracy {val_accuracy:.6f}", flush=True)

out_dir.mkdir(parents=True, exist_ok=True)
(out_dir / "history.json").write_text(json.dumps(history, indent=1))
weights = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
try:
    from safetensors.torch import save_file

    save_file(weights, out_dir / "weights.safetensors")  # plain tensors: nothing executable
except ImportError:  # safetensors not installed: torch's own format
    torch.save(weights, out_dir / "weights.pt")
