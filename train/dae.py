"""Face denoising autoencoder (course Task 2): train, select on validation PSNR, test, save and publish.

    accelerate launch train/dae.py --dataset ../shared/data/faces/olivetti_faces.npy --output_dir outputs/denoiser
    accelerate launch train/dae.py --dataset faces.npy --arch mlp --output_dir outputs/denoiser-mlp    # the course's model
    accelerate launch train/dae.py --dataset faces.npy --people people.npy    # person ids: a person-disjoint split
    accelerate launch train/dae.py --dataset faces.npy --extra_test_dir ../shared/data/landmarks/helen/testset

--data: a .npy of faces (N, H, W) (the course's face_data.npy layout), a folder of face images, or a dataset saved by
datasets_scripts/faces.py; both models work on 64 × 64 faces. --arch mlp is the course's Table 3 exactly (flattened
64 × 64 → Linear 128 → LeakyReLU → linear decoder back to 4,096; MSE, Adam lr 1e-3, weight decay 1e-5). Noise
x̃ = clip(x + σ·ε, 0, 1) is drawn fresh in every training step. The weights of the epoch with the best validation PSNR
(σ = --noise_std) are kept; the test split is only evaluated. The split is by person with --people (one person id per
face) and for the Olivetti layout (400 × 64 × 64), else by image (a log line says so).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch
from accelerate import Accelerator
from accelerate.utils import set_seed
from torch.utils.data import DataLoader, TensorDataset
from tqdm.auto import tqdm

from dlhub.cards import Metric, render_model_card
from dlhub.cli import (add_data_arguments, add_run_arguments, check_run_arguments, command_line, one_line_errors,
                       setup_logging)
from dlhub.data.faces import OLIVETTI_SHAPE, faces_array, load_faces, read_face_folder
from dlhub.denoise import Denoiser, add_noise
from dlhub.errors import DataError
from dlhub.metrics import psnr
from dlhub.plots import plot_denoising_grid, plot_history
from dlhub.training import find_checkpoint, keep_best, save_and_push, save_checkpoint, start_or_resume

TEST_SIGMAS = (0.1, 0.2, 0.3)
EVAL_NOISE_SEED = 1234  # the same noisy validation/test images in every run and epoch
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
    p.add_argument("--epochs", type=int, default=None, help="default: 80 for conv, 150 for mlp")
    p.add_argument("--batch_size", type=int, default=16)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--weight_decay", type=float, default=1e-5)
    p.add_argument("--widths", type=int, nargs="+", default=[32, 64, 128], help="conv: channels per level")
    p.add_argument("--extra_test_dir", default=None,
                   help="a folder of face images from another source, reported as an extra test at σ = 0.2")
    add_run_arguments(p, max_train_samples=False)
    args = p.parse_args(argv)
    if not 0 < args.noise_std <= 1 or (args.noise_std_max is not None and
                                        not args.noise_std_min <= args.noise_std <= args.noise_std_max <= 1):
        raise DataError("noise levels must satisfy 0 < --noise_std_min ≤ --noise_std ≤ --noise_std_max ≤ 1")
    check_run_arguments(args)
    args.epochs = args.epochs or (80 if args.arch == "conv" else 150)
    args.image_size = IMAGE_SIZE
    return args


def as_tensor(faces: np.ndarray, size: int) -> torch.Tensor:
    """(N, H, W) in [0, 1] → (N, 1, size, size) float32 (area-resized when needed)."""
    x = torch.from_numpy(np.ascontiguousarray(faces, dtype=np.float32))[:, None]
    return x if x.shape[-1] == size else torch.nn.functional.interpolate(x, size=(size, size), mode="area")


def noisy_pairs(clean: torch.Tensor, sigma: float) -> TensorDataset:
    generator = torch.Generator().manual_seed(EVAL_NOISE_SEED + int(sigma * 1000))
    return TensorDataset(clean, add_noise(clean, sigma, generator))


@torch.no_grad()
def denoise_batches(model, loader, accelerator) -> dict[str, np.ndarray]:
    """Denoise a loader of (clean, noisy) pairs; gathered over processes, without the padding duplicates."""
    model.eval()
    parts = {"clean": [], "noisy": [], "denoised": []}
    for clean, noisy in loader:
        denoised = model(noisy).clamp(0, 1)
        for key, value in zip(parts, accelerator.gather_for_metrics((clean, noisy, denoised))):
            parts[key].append(value[:, 0].float().cpu().numpy())
    return {k: np.concatenate(v) for k, v in parts.items()}


def augment(clean: torch.Tensor) -> torch.Tensor:
    """Horizontal flips and a little contrast/brightness change, so the model is not tied to one camera."""
    flip = torch.rand(clean.shape[0], device=clean.device) < 0.5
    clean = torch.where(flip.view(-1, 1, 1, 1), clean.flip(-1), clean)
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

    # Data: faces as an HF DatasetDict (60/20/20, by person with --people or for Olivetti), then 64 × 64 tensors
    faces = load_faces(args.dataset, people=args.people)
    data_summary = {split: (faces[split].num_rows, len(set(faces[split]["person"]) - {-1})) for split in faces}
    clean = {split: as_tensor(faces_array(faces[split]), args.image_size) for split in faces}
    train_loader = DataLoader(TensorDataset(clean["train"]), batch_size=args.batch_size, shuffle=True, drop_last=True)
    val_loader = DataLoader(noisy_pairs(clean["validation"], args.noise_std), batch_size=64)

    # Model and optimiser (Adam, lr 1e-3, weight decay 1e-5, as in the course); the loss is MSE for both
    noise_range = (args.noise_std_min, args.noise_std_max) if args.noise_std_max else (args.noise_std, args.noise_std)
    model = Denoiser(arch=args.arch, image_size=args.image_size, widths=args.widths, noise_std=noise_range)
    n_params = sum(p.numel() for p in model.parameters())
    optimizer = torch.optim.Adam(model.parameters(), lr=args.lr, weight_decay=args.weight_decay)
    model, optimizer, train_loader, val_loader = accelerator.prepare(model, optimizer, train_loader, val_loader)

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
            sigma = torch.empty(batch.shape[0], device=batch.device).uniform_(*noise_range)
            loss = torch.nn.functional.mse_loss(model(add_noise(batch, sigma)), batch)
            optimizer.zero_grad()
            accelerator.backward(loss)
            optimizer.step()
            total, count = total + loss.item() * batch.shape[0], count + batch.shape[0]
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
    grids = {}
    for sigma in TEST_SIGMAS:
        loader = accelerator.prepare(DataLoader(noisy_pairs(clean["test"], sigma), batch_size=64))
        out = denoise_batches(model, loader, accelerator)
        noisy_db, denoised_db = psnr(out["noisy"], out["clean"])["psnr"], psnr(out["denoised"], out["clean"])["psnr"]
        metrics.update({f"test_psnr_noisy_{sigma}": noisy_db, f"test_psnr_denoised_{sigma}": denoised_db,
                        f"test_psnr_gain_{sigma}": denoised_db - noisy_db})
        grids[sigma] = out
    if args.extra_test_dir:
        extra = as_tensor(read_face_folder(args.extra_test_dir, 64).astype(np.float32) / 255.0, args.image_size)
        out = denoise_batches(model, accelerator.prepare(DataLoader(noisy_pairs(extra, args.noise_std), batch_size=64)),
                       accelerator)
        metrics.update({"extra_test_images": len(extra),
                        "extra_test_psnr_noisy": psnr(out["noisy"], out["clean"])["psnr"],
                        "extra_test_psnr_denoised": psnr(out["denoised"], out["clean"])["psnr"]})
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


def model_card(args, metrics: dict, data_summary: dict[str, tuple[int, int]]):
    """data_summary: split → (images, people); people = 0 when the split was by image (no person labels)."""
    data_name = Path(args.dataset).name
    data = dict(dataset_name=f"faces from {data_name} (test split)",
                dataset_type=Path(args.dataset).stem.lower().replace("_", "-"), task_type="image-to-image")
    card_metrics = []
    for sigma in TEST_SIGMAS:
        card_metrics += [
            Metric(f"PSNR noisy input, σ = {sigma}", "psnr", metrics[f"test_psnr_noisy_{sigma}"], "test", **data),
            Metric(f"PSNR denoised, σ = {sigma}", "psnr", metrics[f"test_psnr_denoised_{sigma}"], "test", **data)]
    if "extra_test_psnr_denoised" in metrics:
        extra = dict(dataset_name=f"{Path(args.extra_test_dir).name}: {metrics['extra_test_images']} faces from "
                                  "another source, grayscale 64x64", dataset_type="helen-faces",
                     task_type="image-to-image")
        card_metrics += [Metric(f"PSNR noisy input, σ = {args.noise_std}", "psnr", metrics["extra_test_psnr_noisy"],
                                "test", **extra),
                         Metric(f"PSNR denoised, σ = {args.noise_std}", "psnr", metrics["extra_test_psnr_denoised"],
                                "test", **extra)]
    if args.arch == "mlp":
        arch = ("the course's Table 3, exactly: the 64×64 image flattened to 4,096 values → encoder Linear(4096 → "
                "128) → LeakyReLU (slope 0.01) → decoder Linear(128 → 4096), linear, reshaped to 64×64. No "
                "BatchNorm, no activation in the decoder; trained with MSE on the decoder's raw output, which is "
                "clamped to [0, 1] when the model is applied (eval mode). Other image sizes are resized to 64×64 "
                "and back.")
    else:
        arch = (f"a convolutional encoder–decoder with skip connections (U-Net, widths {args.widths}, two 3×3 "
                "conv + BatchNorm + ReLU per level) that predicts the noise and subtracts it from the input. It is "
                "fully convolutional: trained on 64×64 faces, it runs on images of any size.")
    noise = (f"σ drawn uniformly per image from [{args.noise_std_min}, {args.noise_std_max}]" if args.noise_std_max
             else f"σ = {args.noise_std}")
    n_images = sum(n for n, _ in data_summary.values())
    train_images, train_people = data_summary["train"]
    olivetti = not args.people and train_people and n_images == OLIVETTI_SHAPE[0]  # 40 people × 10, split by person
    if train_people:
        how = (f"person ids from `{Path(args.people).name}`" if args.people
               else "the Olivetti layout: 10 consecutive photos per person" if olivetti
               else "the saved dataset's person column")
        split = (f"`{data_name}`: {n_images} grayscale faces of "
                 f"{sum(people for _, people in data_summary.values())} people, split 60/20/20 by person with a "
                 f"fixed seed ({how}), so test faces belong to people never seen in training.")
        trained_on = f"{train_images} photos of {train_people} people"
    else:
        split = (f"`{data_name}`: {n_images} grayscale faces, split 60/20/20 by image with a fixed seed: no person "
                 "labels were given (--people), so one person's photos may be both in training and in test.")
        trained_on = f"{train_images} photos"
    licences = ["Olivetti (AT&T Laboratories Cambridge) faces: research use with credit" if olivetti
                else f"`{data_name}`: the terms of its source (train/dae.py does not know them)"]
    if args.extra_test_dir:
        licences.append(f"`{Path(args.extra_test_dir).name}` (extra test only): the terms of its source; HELEN faces "
                        "are for non-commercial research use")
    return render_model_card(
        task="denoiser",
        repo_id=args.hub_model_id or ("dlhub-course/face-denoiser-mlp" if args.arch == "mlp"
                                      else "dlhub-course/face-denoiser"),
        title="Face denoising autoencoder (" + ("mlp, the course's Table 3" if args.arch == "mlp" else "conv") + ")",
        summary=f"Removes Gaussian noise from grayscale face photos. Architecture: {arch}",
        usage=("clean = model.denoise([pil_image])[0]   # grayscale PIL image, same size as the input"),
        metrics=card_metrics,
        data_description=(f"{split} Images are scaled to [0, 1] and resized to 64×64 where needed. PSNR (MAX = 1) "
                          "is the mean over test images of 10·log10(1/MSE), with fixed noise draws (the same in "
                          "every run and for both architectures)."),
        data_licence="; ".join(licences) + ".",
        training_command=command_line(),
        training_details=(f"Noise x̃ = clip(x + σ·ε, 0, 1), ε ~ N(0, 1), drawn fresh in every step ({noise}). MSE "
                          f"loss, Adam, lr {args.lr}, weight decay {args.weight_decay}, batch {args.batch_size}, "
                          f"{args.epochs} epochs; the epoch with the best validation PSNR at σ = {args.noise_std} "
                          f"(epoch {metrics['best_epoch']}) is kept. {metrics['parameters']:,} parameters; wall time "
                          f"{metrics['wall_time_s'] / 60:.1f} min on the machine that trained it."),
        limitations=(f"Trained on {trained_on}, grayscale: other noise types (JPEG artefacts, Poisson noise, blur) "
                     "are outside what it learned. PSNR is measured on synthetic noise added to clean photos."),
        images=[("denoising_grid.png", "clean / noisy / denoised test faces"),
                ("training_curves.png", "training loss and validation PSNR per epoch")],
        tags=["denoising", "autoencoder", "faces"],
    )


if __name__ == "__main__":
    with one_line_errors(__file__):
        main(parse_args())
