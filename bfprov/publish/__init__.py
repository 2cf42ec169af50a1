"""Publishing, in one home: delivering an account's live pair to where its bots run.

- the target kinds, one module each (`vault`; `aws` with `aws_api` and `aws_list`;
  `kubernetes`), registered once in `kinds.KINDS`, behind the interface of `base`;
- what is checked before anything is written (`preflight`, through each kind's `key`,
  `names` and `needs`);
- what the targets hold, metadata only, and bfprov's records of its deliveries
  (`observe`), brought in line with each other (`reconcile`);
- publications in the plan (`planning`: the plan carries `TargetRef`s);
- the run's deliveries and hooks, and `carry_out` (execute -> record -> deliver ->
  hooks) for apply, promote and rollback (`deliver`, `hooks`), within the run's budget
  for silent endpoints (`breaker`).

Adding a target kind is one new module here plus one line in `kinds.KINDS` (and its
settings model in `bfprov.desired.targets`, one field of `PublishEntry`).
"""
