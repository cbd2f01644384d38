"""Work on the instances: pure command builders, and one executor over a Fabric Group."""
