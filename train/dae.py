"""Face denoising autoencoder (course Task 2): train, select on validation PSNR, test, save and publish.

    accelerate launch train/dae.py --dataset ../shared/data/faces/olivetti_faces.npy --output_dir outputs/denoiser
    accelerate launch train/dae.py --dataset faces.npy --arch mlp --output_dir outputs/denoiser-mlp    # the course's model
    accelerate launch train/dae.py --dataset faces.npy --people people.npy    # person ids: a person-disjoint split
    accelerate launch train/dae.py --dataset faces.npy --extra_test_dir ../shared/data/landmarks/helen/testset
    accelerate launch train/dae.py --dataset ../shared/data/faces/olivetti_faces.npy \
        --add_faces ../shared/data/landmarks/helen --extra_test_dir ../shared/data/landmarks/pytorch_tutorial_faces

--data: a .npy of faces (N, H, W) (the course's face_data.npy layout), a folder of face images, or a dataset saved by
datasets_scripts/faces.py; both models work on 64 × 64 faces. --arch mlp is the course's Table 3 exactly (flattened
64 × 64 → Linear 128 → LeakyReLU → linear decoder back to 4,096; MSE, Adam lr 1e-3, weight decay 1e-5). Noise
x̃ = clip(x + σ·ε, 0, 1) is drawn fresh in every training step. The weights of the epoch with the best validation PSNR
(σ = --noise_std) are kept; the test split is only evaluated. The split is by person with --people (one person id per
face) and for the Olivetti layout (400 × 64 × 64), else by image (a log line says so). A folder of faces with 68
landmarks (HELEN's trainset/ + testset/ with .pts files, the PyTorch tutorial's face_landmarks.csv) is cropped by the
landmark model's rule and split by photo (dlhub.data.faces.load_landmark_faces). --add_faces trains on more sources at
once (their training splits joined, their validation splits joined for the choice of epoch); every source's test split
is reported on its own, and --extra_test_dir is a source held out of training (dlhub.data.faces.held_out_faces: its own
test split where it defines one, else all its faces).
"""

from __future__ import annotations

import argparse
import math
import time
from pathlib import Path

import numpy as np
import torch
from accelerate import Accelerator
from accelerate.utils import set_seed
from torch.utils.data import DataLoader, TensorDataset
from tqdm.auto import tqdm

from dlhub.cards import render_model_card
from dlhub.cli import (add_data_arguments, add_run_arguments, check_run_arguments, command_line, one_line_errors,
                       setup_logging)
from dlhub.data.faces import OLIVETTI_SHAPE, faces_array, held_out_faces, load_faces
from dlhub.denoise import Denoiser, add_noise
from dlhub.errors import DataError
from dlhub.evaluation import DENOISE_TEST_SIGMAS, denoise_batches, denoiser_test, noisy_pairs
from dlhub.metrics import psnr
from dlhub.plots import plot_denoising_grid, plot_history
from dlhub.tasks import BASELINES, hub_org
from dlhub.training import find_checkpoint, keep_best, save_and_push, save_checkpoint, start_or_resume

IMAGE_SIZE = 64  # the course's face_data.npy size, for both architectures


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_data_arguments(p, required=True, output_dir="outputs/denoiser",
                       dataset_help=".npy of faces (N, H, W), a folder of face images, or a saved dataset")
    p.add_argument("--people", default=None,
                   help=".npy of one person id per face of --data: the split is then by person (Olivetti's "
                        "400x64x64 layout is split by person without it)")
    p.add_argument("--arch", choices=["conv", "mlp"], default="conv",
                   help="conv: our encoder-decoder with skips; mlp: the course's Table 3 (4096 -> 128 -> 4096)")
    p.add_argument("--noise_std", type=float, default=0.2, help="σ of the noise (validation uses this σ)")
    p.add_argument("--noise_std_max", type=float, default=None,
                   help="train on σ drawn uniformly per image from [noise_std_min, noise_std_max]")
    p.add_argument("--noise_std_min", type=float, default=0.02)
    p.add_argument("--noise_focus", type=float, default=0.0,
                   help="with --noise_std_max: this fraction of each batch gets σ within ± --noise_focus_width of "
                        "--noise_std (the σ the course and the benchmarks use), the rest from the whole range, so one "
                        "model serves every σ and is at its best at --noise_std")
    p.add_argument("--noise_focus_width", type=float, default=0.05, help="see --noise_focus")
    p.add_argument("--epochs", type=int, default=None, help="default: 80 for conv, 150 for mlp")
    p.add_argument("--batch_size", type=int, default=16)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--weight_decay", type=float, default=1e-5)
    p.add_argument("--widths", type=int, nargs="+", default=[32, 64, 128], help="conv: channels per level")
    p.add_argument("--crop_size", type=int, default=0,
                   help="conv: train on random crops of this side from the (augmented) 64x64 faces, which is "
                        "cheaper per step (0 = whole faces); validation and test always use whole faces")
    p.add_argument("--lr_schedule", choices=["constant", "cosine"], default="constant",
                   help="cosine: the learning rate decays to 0 over --epochs (stepped once per epoch)")
    p.add_argument("--add_faces", nargs="+", default=[], metavar="SOURCE",
                   help="more training sources (a .npy, a folder of faces, a landmark-annotated folder such as "
                        "HELEN's): each split by its own rule, their training and validation splits joined")
    p.add_argument("--extra_test_dir", default=None,
                   help="a source held out of training (a folder of face images, a landmark-annotated folder, or a "
                        ".npy), reported as an extra test: its own test split (people never seen, a testset/ "
                        "folder), else all its faces")
    add_run_arguments(p, max_train_samples=False)
    args = p.parse_args(argv)
    if not 0 < args.noise_std <= 1 or (args.noise_std_max is not None and
                                        not args.noise_std_min <= args.noise_std <= args.noise_std_max <= 1):
        raise DataError("noise levels must satisfy 0 < --noise_std_min ≤ --noise_std ≤ --noise_std_max ≤ 1")
    if not 0 <= args.noise_focus <= 1 or (args.noise_focus and args.noise_std_max is None):
        raise DataError("--noise_focus takes a fraction from 0 to 1, with a σ range (--noise_std_max)")
    if not 0 < args.noise_focus_width <= 0.5:
        raise DataError("--noise_focus_width takes a half-width of σ from 0 to 0.5")
    if args.crop_size and (args.arch != "conv" or not 16 <= args.crop_size <= IMAGE_SIZE):
        raise DataError(f"--crop_size takes a side from 16 to {IMAGE_SIZE}, for --arch conv only")
    named = [source_name(s) for s in [args.dataset, *args.add_faces, args.extra_test_dir] if s]
    if len(set(named)) < len(named):
        raise DataError(f"--dataset, --add_faces and --extra_test_dir name the same source twice: {named}")
    check_run_arguments(args)
    args.epochs = args.epochs or (80 if args.arch == "conv" else 150)
    args.image_size = IMAGE_SIZE
    return args


def as_tensor(faces: np.ndarray, size: int) -> torch.Tensor:
    """(N, H, W) in [0, 1] → (N, 1, size, size) float32 (area-resized when needed)."""
    x = torch.from_numpy(np.ascontiguousarray(faces, dtype=np.float32))[:, None]
    return x if x.shape[-1] == size else torch.nn.functional.interpolate(x, size=(size, size), mode="area")


def source_name(source) -> str:
    """A data source as the tables name it: its file or folder name."""
    return Path(source).name


def random_crops(images: torch.Tensor, side: int) -> torch.Tensor:
    """One random side × side crop of each image (B, C, H, W)."""
    h, w = images.shape[-2:]
    tops = torch.randint(0, h - side + 1, (len(images),)).tolist()
    lefts = torch.randint(0, w - side + 1, (len(images),)).tolist()
    return torch.stack([image[..., t:t + side, l:l + side] for image, t, l in zip(images, tops, lefts)])


def sample_sigma(n: int, noise_range: tuple[float, float], focus_sigma: float, focus: float, device=None,
                 width: float = 0.05) -> torch.Tensor:
    """One σ per image: uniform over noise_range, except a `focus` fraction drawn within ± width of focus_sigma (kept
    inside the range); a blind model trained evenly over the range is weaker at the σ it is judged on."""
    sigma = torch.empty(n, device=device).uniform_(*noise_range)
    if not focus:  # no further draws: runs without --noise_focus keep their random stream (and their weights)
        return sigma
    low, high = max(noise_range[0], focus_sigma - width), min(noise_range[1], focus_sigma + width)
    near = torch.empty(n, device=device).uniform_(low, high)
    return torch.where(torch.rand(n, device=device) < focus, near, sigma)


def augment(clean: torch.Tensor) -> torch.Tensor:
    """Horizontal flips, a zoom into a random 75–100% of half the faces (other scales and framings), and a little
    contrast/brightness change, so the model is not tied to one camera or one framing."""
    n, device = clean.shape[0], clean.device
    flip = torch.rand(n, device=device) < 0.5
    clean = torch.where(flip.view(-1, 1, 1, 1), clean.flip(-1), clean)
    zoom = torch.rand(n, device=device) < 0.5
    scale = torch.where(zoom, torch.empty(n, device=device).uniform_(0.75, 1.0), torch.ones(n, device=device))
    theta = torch.zeros(n, 2, 3, device=device)
    theta[:, 0, 0] = theta[:, 1, 1] = scale
    theta[:, :, 2] = (1 - scale)[:, None] * torch.empty(n, 2, device=device).uniform_(-1, 1)  # stays inside the face
    grid = torch.nn.functional.affine_grid(theta, list(clean.shape), align_corners=False)
    zoomed = torch.nn.functional.grid_sample(clean, grid, mode="bilinear", padding_mode="border", align_corners=False)
    clean = torch.where(zoom.view(-1, 1, 1, 1), zoomed, clean)
    gain = torch.empty(clean.shape[0], 1, 1, 1, device=clean.device).uniform_(0.8, 1.2)
    shift = torch.empty(clean.shape[0], 1, 1, 1, device=clean.device).uniform_(-0.1, 0.1)
    mean = clean.mean(dim=(1, 2, 3), keepdim=True)
    return ((clean - mean) * gain + mean + shift).clamp(0, 1)


def main(args: argparse.Namespace) -> dict:
    accelerator = Accelerator()
    setup_logging(accelerator.is_main_process)
    set_seed(args.seed)
    start = time.time()

    # A checkpoint to resume from is looked up first: a wrong --resume_from_checkpoint fails before any work
    checkpoints = Path(args.checkpoint_dir)
    resume_path = find_checkpoint(checkpoints, args.resume_from_checkpoint) if args.resume_from_checkpoint else None

    # Data: faces as an HF DatasetDict (60/20/20, by person with --people or for Olivetti; landmark folders by photo),
    # then 64 × 64 tensors; --add_faces sources join the training and validation splits, each keeps its test split
    faces = load_faces(args.dataset, people=args.people)
    if "test" not in faces:
        raise DataError(f"{args.dataset} has no test split: give it as --add_faces, beside a --dataset that has one")
    data_summary = {split: (faces[split].num_rows, len(set(faces[split]["person"]) - {-1})) for split in faces}
    sources = {source_name(args.dataset): {split: as_tensor(faces_array(faces[split]), args.image_size)
                                           for split in faces}}
    for source in args.add_faces:
        added = load_faces(source)
        sources[source_name(source)] = {split: as_tensor(faces_array(added[split]), args.image_size) for split in added}
    if args.extra_test_dir:
        sources[source_name(args.extra_test_dir)] = {"test": as_tensor(held_out_faces(args.extra_test_dir),
                                                                       args.image_size)}
    clean = {split: torch.cat([parts[split] for name, parts in sources.items() if split in parts
                               and name != source_name(args.extra_test_dir or "")])
             for split in ("train", "validation")}
    clean["test"] = sources[source_name(args.dataset)]["test"]
    train_loader = DataLoader(TensorDataset(clean["train"]), batch_size=args.batch_size, shuffle=True, drop_last=True)
    val_loader = DataLoader(noisy_pairs(clean["validation"], args.noise_std), batch_size=64)

    # Model and optimiser (Adam, lr 1e-3, weight decay 1e-5, as in the course); the loss is MSE for both
    noise_range = (args.noise_std_min, args.noise_std_max) if args.noise_std_max else (args.noise_std, args.noise_std)
    model = Denoiser(arch=args.arch, image_size=args.image_size, widths=args.widths, noise_std=noise_range,
                     flip_average=args.arch == "conv")  # in eval mode: validation, test and users alike
    n_params = sum(p.numel() for p in model.parameters())
    optimizer = torch.optim.Adam(model.parameters(), lr=args.lr, weight_decay=args.weight_decay)
    model, optimizer, train_loader, val_loader = accelerator.prepare(model, optimizer, train_loader, val_loader)
    decay = (lambda e: 0.5 * (1 + math.cos(math.pi * e / args.epochs))) if args.lr_schedule == "cosine" else None
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, decay or (lambda e: 1.0))
    accelerator.register_for_checkpointing(scheduler)  # stepped per epoch, saved and restored with the checkpoints

    state, saved, first_epoch = start_or_resume(accelerator, checkpoints, resume_path, {
        "history": {"train_loss": [], "val_psnr_denoised": [], "val_psnr_noisy": []}, "best_psnr": -1.0,
        "best_epoch": 0})
    best_weights = saved.get("best_model")

    # Training: fresh noise in every step, validation PSNR after every epoch, the best epoch kept
    bar = tqdm(range(first_epoch, args.epochs + 1), desc="epochs", disable=not accelerator.is_main_process)
    for epoch in bar:
        model.train()
        total, count = 0.0, 0
        for (batch,) in train_loader:
            batch = augment(batch) if args.arch == "conv" else batch
            batch = random_crops(batch, args.crop_size) if args.crop_size else batch
            sigma = sample_sigma(batch.shape[0], noise_range, args.noise_std, args.noise_focus, batch.device,
                                 args.noise_focus_width)
            loss = torch.nn.functional.mse_loss(model(add_noise(batch, sigma)), batch)
            optimizer.zero_grad()
            accelerator.backward(loss)
            optimizer.step()
            total, count = total + loss.item() * batch.shape[0], count + batch.shape[0]
        scheduler.step()
        val = denoise_batches(model, val_loader, accelerator)
        val_db = psnr(val["denoised"], val["clean"])["psnr"]
        history = state["history"]
        history["train_loss"].append(total / max(count, 1))
        history["val_psnr_denoised"].append(val_db)
        history["val_psnr_noisy"].append(psnr(val["noisy"], val["clean"])["psnr"])
        best_weights = keep_best(state, epoch, val_db, accelerator.unwrap_model(model), best_weights, best_psnr=val_db)
        bar.set_postfix(loss=f"{history['train_loss'][-1]:.5f}", val_psnr=f"{val_db:.2f}")
        save_checkpoint(accelerator, checkpoints, epoch, state, {"best_model": best_weights})

    # Test: the kept (best validation) weights, at σ ∈ {0.1, 0.2, 0.3}
    final = accelerator.unwrap_model(model)
    final.load_state_dict(best_weights)
    metrics = {"best_epoch": state["best_epoch"], "epochs": args.epochs, "parameters": n_params,
               "val_psnr_denoised": state["best_psnr"]}
    test_metrics, grids = denoiser_test(model, clean["test"], accelerator, sigmas=DENOISE_TEST_SIGMAS)
    metrics.update(test_metrics)
    # Every source's test split on its own (the held-out source's too), at each test σ
    metrics["sources"] = {}
    for name, parts in sources.items():
        held_out = args.extra_test_dir is not None and name == source_name(args.extra_test_dir)
        entry = {"role": "held out" if held_out else "training",
                 "images": {split: len(images) for split, images in parts.items()}}
        if "test" in parts:
            entry.update(denoiser_test(model, parts["test"], accelerator, split="", sigmas=DENOISE_TEST_SIGMAS)[0])
        metrics["sources"][name] = entry
    if args.extra_test_dir:
        extra = sources[source_name(args.extra_test_dir)]["test"]
        sigma = args.noise_std
        extra_metrics = denoiser_test(model, extra, accelerator, split="", sigmas=(sigma,))[0]
        metrics.update({"extra_test_images": len(extra), "extra_test_psnr_noisy": extra_metrics[f"psnr_noisy_{sigma}"],
                        "extra_test_psnr_denoised": extra_metrics[f"psnr_denoised_{sigma}"]})
    metrics["wall_time_s"] = round(time.time() - start, 1)
    accelerator.print({k: round(v, 3) if isinstance(v, float) else v for k, v in metrics.items()})

    # Save (atomically) and publish
    if accelerator.is_main_process:
        shown = grids[args.noise_std if args.noise_std in grids else 0.2]
        pick = np.unique(np.linspace(0, len(shown["clean"]) - 1, 20).round().astype(int))  # spread over people
        figures = {
            "denoising_grid.png": plot_denoising_grid(
                shown["clean"][pick], shown["noisy"][pick], shown["denoised"][pick],
                "test faces (never seen in training): clean / noisy / denoised, PSNR in dB"),
            "training_curves.png": plot_history(
                state["history"], {"training loss (MSE)": ["train_loss"],
                                   f"validation PSNR (dB), σ = {args.noise_std}": ["val_psnr_denoised",
                                                                                    "val_psnr_noisy"]},
                best_epoch=state["best_epoch"]),
        }
        save_and_push(accelerator, final, args, model_card(args, metrics, data_summary), metrics, figures)
    accelerator.wait_for_everyone()
    return metrics


def model_card(args, metrics: dict, data_summary: dict[str, tuple[int, int]], training_command: str | None = None):
    """data_summary: split → (images, people); people = 0 when the split was by image (no person labels)."""
    n_images = sum(n for n, _ in data_summary.values())
    return render_model_card(
        "denoiser", args=args, metrics=metrics, training_command=training_command or command_line(),
        repo_id=args.hub_model_id or (f"{hub_org()}/{BASELINES['denoiser-mlp'][1]}" if args.arch == "mlp" else None),
        data_summary=data_summary, test_sigmas=DENOISE_TEST_SIGMAS,
        # load_faces splits Olivetti's layout (40 people × 10) by person without --people
        olivetti_layout=bool(not args.people and data_summary["train"][1] and n_images == OLIVETTI_SHAPE[0]))


if __name__ == "__main__":
    with one_line_errors(__file__):
        main(parse_args())
