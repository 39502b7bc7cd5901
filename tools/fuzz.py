"""A longer fuzz run than the test suite's: the same properties as tests/test_fuzz.py with
many more examples. Prints inputs tried and failures found.

    python tools/fuzz.py [--examples 5000]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import warnings
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).parents[1] / "tests"))

import test_fuzz  # the properties live with the tests


def main() -> None:
    warnings.filterwarnings("ignore", message=".*truncated")  # expected for cut files
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=5000)
    args = parser.parse_args()
    tried = {"load_audio": 0, "push": 0}
    runs = settings(max_examples=args.examples, deadline=None, database=None,
                    suppress_health_check=list(HealthCheck))

    with tempfile.TemporaryDirectory() as tmp:
        @runs
        @given(data=st.data())
        def load(data) -> None:
            tried["load_audio"] += 1
            test_fuzz.test_load_audio_never_raises_anything_but_audio_error.hypothesis \
                .inner_test(Path(tmp), data)

        load()

    @runs
    @given(pushes=st.lists(test_fuzz.chunks, min_size=1, max_size=6))
    def push(pushes) -> None:
        tried["push"] += 1
        test_fuzz.test_push_answers_events_or_one_clear_error.hypothesis.inner_test(pushes)

    push()
    print(f"inputs tried: load_audio {tried['load_audio']}, push sequences {tried['push']}; "
          "failures found: 0")


if __name__ == "__main__":
    main()
