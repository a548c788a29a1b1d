// Alert rules on the app's own log lines in Application Insights, and the action group that
// emails someone when one fires. The queries (alerts/*.kql) read the JSON the app writes into
// each line's message (sync_core/core/run_log.py); tests/infra/test_alerts.py fails when a query
// names an event or a field the code does not write.
param location string
param tags object
param appInsightsId string
param actionGroupName string
param namePrefix string

@description('Who is emailed when an alert fires; empty: the rules fire and show in the portal only.')
param alertEmail string

@description('Runs of a tenant that must fail in a row before the failing alert fires.')
@minValue(1)
@maxValue(20)
param failuresInARow int

resource actionGroup 'Microsoft.Insights/actionGroups@2023-01-01' = {
  name: actionGroupName
  location: 'global'
  tags: tags
  properties: {
    groupShortName: 'entrasync'
    enabled: true
    emailReceivers: empty(alertEmail) ? [] : [
      {
        name: 'operator'
        emailAddress: alertEmail
        useCommonAlertSchema: true
      }
    ]
  }
}

var rules = [
  {
    name: 'tenant-failing'
    displayName: 'Entra sync: a tenant failed ${failuresInARow} runs in a row'
    description: 'The last runs of a tenant all failed; the alert names the tenant and its newest error codes (docs/runbook.md, Failure codes).'
    severity: 1
    frequency: 'PT15M'
    window: 'P1D'
    query: replace(loadTextContent('alerts/failing.kql'), '{{failures}}', string(failuresInARow))
  }
  {
    name: 'tenant-no-success'
    displayName: 'Entra sync: a tenant had no successful run for 24 hours'
    description: 'A tenant that has run for a day has not succeeded for 24 hours (failing, or no longer running at all).'
    severity: 2
    frequency: 'PT1H'
    window: 'P2D'
    query: loadTextContent('alerts/no_success.kql')
  }
  {
    name: 'deletions-held'
    displayName: 'Entra sync: deletions held by the guard'
    description: 'Clean Up wanted to remove more employees than maxDeletes or maxDeletePercent allow; nothing was deleted (docs/runbook.md, Held deletions).'
    severity: 2
    frequency: 'PT15M'
    window: 'PT15M'
    query: loadTextContent('alerts/held.kql')
  }
  {
    name: 'credential-expiring'
    displayName: 'Entra sync: the app\'s credential expires within 30 days'
    description: 'The client secret or certificate in Key Vault expires soon or has expired: renew it (docs/deploy.md).'
    severity: 2
    frequency: 'PT6H'
    window: 'PT6H'
    query: loadTextContent('alerts/credential.kql')
  }
]

resource alertRules 'Microsoft.Insights/scheduledQueryRules@2023-12-01' = [for rule in rules: {
  name: '${namePrefix}-${rule.name}'
  location: location
  tags: tags
  kind: 'LogAlert'
  properties: {
    displayName: rule.displayName
    description: rule.description
    severity: rule.severity
    enabled: true
    scopes: [
      appInsightsId
    ]
    evaluationFrequency: rule.frequency
    windowSize: rule.window
    criteria: {
      allOf: [
        {
          query: rule.query
          timeAggregation: 'Count'
          operator: 'GreaterThan'
          threshold: 0
          failingPeriods: {
            numberOfEvaluationPeriods: 1
            minFailingPeriodsToAlert: 1
          }
        }
      ]
    }
    autoMitigate: true
    actions: {
      actionGroups: [
        actionGroup.id
      ]
    }
  }
}]
