"""The harness: private database, apps, Locust, results, analysis, report, regression gate."""
