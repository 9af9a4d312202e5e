"""Epoch time and accuracy of the ``image`` family's nets on this CPU (groundwork for choosing the default net).

    nice -n 10 .venv/bin/python -m bench.image_speed --arch mobilenet --width 32 --epochs 3
    nice -n 10 .venv/bin/python -m bench.image_speed --arch resnet --precision mixed_bfloat16 --steps 30

``--steps N`` times N training steps only (after a warm-up of 5) and prints images/s and the
implied epoch time; otherwise it trains on the 54k/6k train/valid split for ``--epochs`` with
Adam and a linear warm-up + linear decay to 0 and prints per-epoch valid accuracy with the
elapsed time, time-to-94%/95% on valid, and (for the record only, not for selection) the final
test accuracy. One JSON line per run is appended to ``--out`` (default /tmp/image_speed.jsonl).

Measured on a 2-core AMD EPYC with AVX512-BF16 (no AMX; on one with AVX2 only, bfloat16 is
emulated and ran 9x slower than float32: reports/precision_speed.jsonl), TF 2.21 / Keras 3.15, nice 10, another
test suite partly running (train-only epoch = 422 steps of 128):

    net (flip, shift 0.1)        params   float32 img/s (s/epoch)  mixed_bfloat16 img/s (s/epoch)
    mobilenet width 32 blocks 2   40,842    882 (61)  [b256: 716]    718 (75)
    resnet    width 16 blocks 2  176,090    916 (59)  [b256: 965]   1095 (49)
    resnet    width 32 blocks 2  698,282    267 (203)                384 (141)

bfloat16 helps the dense 3x3 convs (1.2-1.45x) and slows the depthwise ones (0.8x). A later
machine with AVX512-BF16, quiet (nothing else running), in reports/image_speed_avx512.jsonl (each
line records the CPU's flags and the load): the default vgg width 48 with shift 0.1 at 543 img/s
in float32 (99.5 s per 422-step epoch) and 671 img/s in mixed bfloat16 (80.5 s); XLA slower
there (477 img/s, shift 0). Under full
contention the same nets ran at 40-60% of these rates. Accuracy: resnet width 16, float32,
Adam 3e-3, half-epoch warm-up then linear decay to 0 over 6 epochs: valid 0.3955 0.8342 0.8675
0.8768 0.9012 0.9178 (610 s), test 0.9202 — far from converged; 94%/95% not reached.
"""

from __future__ import annotations

import argparse
import json
import time

import keras

from kexue.corpora.fashion_mnist import load_split, train_valid_split
from kexue.families.image import Config, EpochClock, build_model, time_to_reach
from kexue.train import FitConfig, OptimizerConfig, build_optimizer, seed_everything


def make_config(args) -> Config:
    opt = OptimizerConfig(name="adam", learning_rate=args.lr, schedule={}, weight_decay=0.0,
                          global_clipnorm=0.0, gradient_accumulation_steps=1, use_ema=False,
                          ema_momentum=0.99, lr_multipliers={}, lookahead_k=0, lookahead_alpha=0.5)
    fit = FitConfig(epochs=args.epochs, batch_size=args.batch, seed=args.seed, deterministic=False,
                    distribute="none", optimizer=opt)
    return Config(arch=args.arch, width=args.width, blocks=args.blocks, activation=args.activation,
                  batch_norm=not args.no_bn, flip=not args.no_flip, shift=args.shift,
                  erasing=args.erasing, dropout=args.dropout, precision=args.precision, xla=args.jit,
                  valid_size=6000, limit_train=0, warmup_epochs=args.warmup, momentum=0.9,
                  label_smoothing=args.ls, tta=True, fit=fit)


def _machine() -> dict:
    """What a timing depends on: the CPU's vector extensions, and the 1-minute load when the timed
    part starts, this process's own start-up included (a run beside other work is up to 3x slower
    on two cores)."""
    import os

    flags = set()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("flags"):
                    flags = set(line.split(":", 1)[1].split())
                    break
    except OSError:
        pass
    wanted = ("avx2", "avx512f", "avx512_bf16", "amx_bf16")
    return {"cpus": os.cpu_count(), "flags": [f for f in wanted if f in flags],
            "load_1min": round(os.getloadavg()[0], 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", default="mobilenet")
    parser.add_argument("--width", type=int, default=32)
    parser.add_argument("--blocks", type=int, default=2)
    parser.add_argument("--activation", default="relu")
    parser.add_argument("--no-bn", action="store_true")
    parser.add_argument("--no-flip", action="store_true")
    parser.add_argument("--shift", type=float, default=0.0)
    parser.add_argument("--erasing", type=float, default=0.0)
    parser.add_argument("--dropout", type=float, default=0.0)
    parser.add_argument("--precision", default="float32")
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--steps", type=int, default=0, help="time this many steps only")
    parser.add_argument("--opt", default="adam", choices=["adam", "sgd"])
    parser.add_argument("--wd", type=float, default=0.0, help="decoupled weight decay (Keras)")
    parser.add_argument("--ls", type=float, default=0.0, help="label smoothing")
    parser.add_argument("--warmup", type=float, default=0.5, help="warm-up epochs")
    parser.add_argument("--jit", action="store_true", help="compile the train step with XLA")
    parser.add_argument("--data", default="data/raw/fashion_mnist")
    parser.add_argument("--out", default="/tmp/image_speed.jsonl")
    args = parser.parse_args()

    cfg = make_config(args)
    seed_everything(cfg.fit.seed, False)
    images, labels = load_split(args.data, "train")
    train_idx, valid_idx = train_valid_split(labels, cfg.valid_size, cfg.fit.seed)
    x_train, y_train = images[train_idx], labels[train_idx].astype("int32")
    x_valid, y_valid = images[valid_idx], labels[valid_idx].astype("int32")
    x_valid_raw = x_valid
    steps_per_epoch = -(-len(x_train) // cfg.fit.batch_size)
    total = steps_per_epoch * cfg.fit.epochs
    warmup = max(1, int(steps_per_epoch * args.warmup))
    schedule = keras.optimizers.schedules.PolynomialDecay(args.lr, total - warmup, 0.0)  # linear to 0
    model = build_model(cfg)
    lr = keras.optimizers.schedules.LearningRateSchedule
    if args.steps:
        optimizer = build_optimizer(cfg.fit.optimizer, model)
    else:
        class WarmupLinear(lr):  # warm-up over half an epoch, then linear decay to 0
            def __call__(self, step):
                step = keras.ops.cast(step, "float32")
                return keras.ops.where(step < warmup, args.lr * (step + 1) / warmup,
                                       schedule(step - warmup))
        if args.opt == "sgd":
            optimizer = keras.optimizers.SGD(WarmupLinear(), momentum=0.9, nesterov=True,
                                             weight_decay=args.wd or None)
        else:
            optimizer = keras.optimizers.Adam(WarmupLinear(), weight_decay=args.wd or None)
    y_train = keras.utils.to_categorical(y_train, 10)
    y_valid = keras.utils.to_categorical(y_valid, 10)
    model.compile(optimizer=optimizer,
                  loss=keras.losses.CategoricalCrossentropy(label_smoothing=args.ls),
                  metrics=["accuracy"],
                  jit_compile=args.jit)
    record = {k: v for k, v in vars(args).items() if k not in ("data", "out")}
    record["params"] = int(model.count_params())
    record["machine"] = _machine()
    print(f"{args.arch} width {args.width} blocks {args.blocks} {args.precision} batch "
          f"{args.batch}: {record['params']:,} params", flush=True)

    if args.steps:
        batch = x_train[: cfg.fit.batch_size], y_train[: cfg.fit.batch_size]
        for _ in range(5):
            model.train_on_batch(*batch)
        start = time.perf_counter()
        for _ in range(args.steps):
            model.train_on_batch(*batch)
        seconds = (time.perf_counter() - start) / args.steps
        record.update(step_seconds=round(seconds, 4),
                      images_per_second=round(cfg.fit.batch_size / seconds, 1),
                      epoch_seconds_train_only=round(seconds * steps_per_epoch, 1))
        print(json.dumps(record), flush=True)
    else:
        history = model.fit(x_train, y_train, batch_size=cfg.fit.batch_size, epochs=cfg.fit.epochs,
                            validation_data=(x_valid, y_valid), callbacks=[EpochClock()], verbose=2)
        curve, elapsed = history.history["val_accuracy"], history.history["elapsed_seconds"]
        x_test, y_test = load_split(args.data, "test")
        test = model.evaluate(x_test, keras.utils.to_categorical(y_test, 10), batch_size=512,
                              verbose=0, return_dict=True)
        import numpy as np
        probs = model.predict(x_test, batch_size=512, verbose=0)
        probs_flip = model.predict(x_test[:, :, ::-1], batch_size=512, verbose=0)
        record["test_accuracy_tta"] = round(float(np.mean(np.argmax(probs + probs_flip, -1) == y_test)), 4)
        vp = model.predict(x_valid_raw, batch_size=512, verbose=0) + model.predict(x_valid_raw[:, :, ::-1], batch_size=512, verbose=0)
        record["valid_accuracy_tta"] = round(float(np.mean(np.argmax(vp, -1) == np.argmax(y_valid, -1))), 4)
        record.update(val_accuracy=[round(v, 4) for v in curve],
                      elapsed_seconds=[round(v, 1) for v in elapsed],
                      valid_94_seconds=time_to_reach(curve, elapsed, 0.94),
                      valid_95_seconds=time_to_reach(curve, elapsed, 0.95),
                      test_accuracy_final=round(test["accuracy"], 4))
        print(json.dumps(record), flush=True)
    with open(args.out, "a", encoding="utf-8") as handle:
        handle.write(json.dumps(record) + "\n")


if __name__ == "__main__":
    main()
