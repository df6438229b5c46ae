"""Labels, features and the training dataset built from the tick store into the offline store."""
