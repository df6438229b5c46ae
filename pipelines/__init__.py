"""What tickml does with ticks: sources, labels, datasets, training, selection and evaluation."""
