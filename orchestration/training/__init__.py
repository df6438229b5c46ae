"""The two direction models: training runs registered in MLflow, and champion promotion."""
