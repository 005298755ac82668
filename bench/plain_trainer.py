"""A plain Hugging Face `Trainer` fine-tuning script, written the way the transformers documentation shows.

It is the yardstick of `bench.vs_trainer`: AutoModelForSequenceClassification, the tokenizer padding every
text to max_length 128, default `TrainingArguments` except epochs, batch size, learning rate and the
output folder. It reads the same train and test rows as the finetune stage (the `text` and `label`
columns of `data/processed/splits`) and prints one JSON line: Trainer's own train_samples_per_second,
its train_runtime, and test accuracy.

    python -m bench.plain_trainer --splits data/processed/splits --out /tmp/plain --epochs 1
"""

from __future__ import annotations

import argparse
import json

import numpy as np
from datasets import load_from_disk
from transformers import (
    AutoModelForSequenceClassification,
    AutoTokenizer,
    Trainer,
    TrainingArguments,
)

from stages.model.resolve import resolve_model


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--splits", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--model", default="builtin:minilm-l6")
    ap.add_argument("--epochs", type=float, default=1)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--learning-rate", type=float, default=1e-4)
    args = ap.parse_args(argv)

    splits = load_from_disk(args.splits)
    names = splits["train"].features["label"].names
    checkpoint = resolve_model(args.model)
    tokenizer = AutoTokenizer.from_pretrained(checkpoint)

    def tokenize(batch):
        return tokenizer(batch["text"], padding="max_length", truncation=True, max_length=128)

    keep = ["text", "label"]
    train = splits["train"].select_columns(keep).map(tokenize, batched=True)
    test = splits["test"].select_columns(keep).map(tokenize, batched=True)
    model = AutoModelForSequenceClassification.from_pretrained(
        checkpoint,
        num_labels=len(names),
        id2label=dict(enumerate(names)),
        label2id={n: i for i, n in enumerate(names)},
    )
    training_args = TrainingArguments(
        output_dir=args.out,
        num_train_epochs=args.epochs,
        per_device_train_batch_size=args.batch_size,
        learning_rate=args.learning_rate,
    )
    trainer = Trainer(model=model, args=training_args, train_dataset=train, processing_class=tokenizer)
    result = trainer.train()
    logits = trainer.predict(test).predictions
    accuracy = float((np.asarray(logits).argmax(axis=1) == np.asarray(test["label"])).mean())
    print(
        json.dumps(
            {
                "train_samples_per_s": round(result.metrics["train_samples_per_second"], 3),
                "train_runtime_s": round(result.metrics["train_runtime"], 2),
                "test_accuracy": round(accuracy, 4),
            }
        )
    )


if __name__ == "__main__":
    main()
