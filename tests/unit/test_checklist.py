"""The checklist as `inv deploy` runs it: the seed's steps, in run order, each named once."""

from deployer import checklist
from deployer.checklist import image


def test_deploy_steps_run_in_seed_order_with_inputs_first():
    steps = checklist.deploy_steps(network="host")
    assert [str(s.number) for s in steps] == ["1", "2", "3", "4", "5", "10", "11", "6", "7", "8", "9", "9", "12",
                                             "14a", "14a", "14a", "14a", "13", "14b", "14c", "14d", "14g", "14e", "14f"]
    assert len({s.name for s in steps}) == len(steps)
    assert next(s for s in steps if isinstance(s, image.BuildImage)).network == "host"
