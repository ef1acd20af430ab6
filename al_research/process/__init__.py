"""What one process of the harness sets up for itself, below everything else.

Environment variables read at import by TensorFlow and BLAS (`env`, imported first by the
package), stop signals that end a run cleanly and the shield that lets a flush finish
(`signals`), and the share of the machine's cores a process gets (`cores`). No module here
imports TensorFlow, MLflow or any other part of the harness.
"""
