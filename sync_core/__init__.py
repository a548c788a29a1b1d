"""Entra Employee Sync: keeps an Employees table in Azure Table Storage in step with Entra ID."""
