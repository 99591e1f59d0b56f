# JupyterHub config for a room, for a teacher who runs `jupyterhub` themselves rather than `ptqlab hub`:
#
#   ptqlab hub --users 30 --dir /srv/ptqlab-hub   # once: writes /srv/ptqlab-hub/students.tsv (Ctrl+C it)
#   PTQLAB_HUB_DIR=/srv/ptqlab-hub PTQLAB_HUB_USERS=30 jupyterhub -f deploy/jupyterhub_config.py
#
# Everything is set by ptqlab.cli.hub.configure (students' passwords, a home per student with a copy of the
# labs, marimo through marimo-jupyter-extension); override any setting below it, e.g. another spawner:
#   c.JupyterHub.spawner_class = "dockerspawner.DockerSpawner"   # README: "JupyterHub for a room"
import os

from ptqlab.cli.hub import configure

c = get_config()  # noqa: F821 (JupyterHub defines get_config)
configure(
    c,
    state=os.environ.get("PTQLAB_HUB_DIR", "ptqlab-hub"),
    users=int(os.environ.get("PTQLAB_HUB_USERS", "2")),
    port=int(os.environ.get("PTQLAB_HUB_PORT", "8000")),
    host=os.environ.get("PTQLAB_HUB_HOST", "127.0.0.1"),
)
