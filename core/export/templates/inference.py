"""Chat in a terminal with this fine-tuned adapter: base model + LoRA adapter, loaded with PEFT.

    pip install torch transformers peft
    python inference.py                      # base model from the model card
    python inference.py --base PATH_OR_ID    # another copy of the same base model

Type a message and press Enter; an empty line or Ctrl-D quits.
"""

import argparse
from pathlib import Path

import torch
from peft import PeftModel
from transformers import AutoModelForCausalLM, AutoTokenizer, TextStreamer

HERE = Path(__file__).resolve().parent
BASE_MODEL = __BASE_MODEL__


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", default=BASE_MODEL, help="base model folder or Hub id")
    parser.add_argument("--max-new-tokens", type=int, default=256)
    args = parser.parse_args()
    device = "cuda" if torch.cuda.is_available() else "cpu"
    tokenizer = AutoTokenizer.from_pretrained(HERE)
    model = AutoModelForCausalLM.from_pretrained(args.base, use_safetensors=True).to(device)
    model = PeftModel.from_pretrained(model, HERE).eval()
    streamer = TextStreamer(tokenizer, skip_prompt=True, skip_special_tokens=True)
    history = []
    while True:
        try:
            text = input("you> ").strip()
        except EOFError:
            break
        if not text:
            break
        history.append({"role": "user", "content": text})
        inputs = tokenizer.apply_chat_template(history, add_generation_prompt=True, return_tensors="pt",
                                               return_dict=True).to(device)
        print("assistant> ", end="", flush=True)
        with torch.no_grad():
            output = model.generate(**inputs, max_new_tokens=args.max_new_tokens, do_sample=False,
                                    streamer=streamer)
        answer = tokenizer.decode(output[0, inputs["input_ids"].shape[1]:], skip_special_tokens=True)
        history.append({"role": "assistant", "content": answer.strip()})


if __name__ == "__main__":
    main()
