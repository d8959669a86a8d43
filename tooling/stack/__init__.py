"""The local stack, brought up one way for `make run`, the tests and the bench.

`plan` reads what runs where from the mesh policy's local topology
(helm/caixa/values-local.yaml, the one place its ports are set); `bring_up`
starts a plan in order through a launcher: `supervised` runs every process as a
child (the devstack, the bench), the tests run the services in-process.
"""
