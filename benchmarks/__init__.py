"""Speed and accuracy benchmarks (`make bench`, `python -m benchmarks`); see RESULTS.md.

Importing the package imports TensorFlow with its native start-up lines discarded, before any
benchmark module (`python -m benchmarks.layers` imports this package first) imports it.
"""

from layers._native_logs import import_tensorflow_quietly

import_tensorflow_quietly()
