// Everything the sync app needs, in one resource group, for `azd up`.
// No connection string or key is created or passed anywhere: the app reaches storage, Key Vault
// and Application Insights with its user-assigned managed identity.
targetScope = 'subscription'

@minLength(1)
@maxLength(64)
@description('azd environment name; seeds every resource name and the azd-env-name tag.')
param environmentName string

@minLength(1)
@description('Region of every resource; it must offer the Flex Consumption plan.')
param location string

@description('Object id of whoever runs azd (AZURE_PRINCIPAL_ID). Empty grants nobody extra roles.')
param principalId string = ''

@description('What principalId is: a person (User) or a CI login (ServicePrincipal).')
@allowed([
  'User'
  'ServicePrincipal'
])
param principalType string = 'User'

@description('Directory (tenant) ID whose users are synced: a GUID, not a domain (the app refuses domains). Empty means this subscription\'s tenant.')
param entraTenantId string = ''

@description('Client id of the Entra app registration; empty until the app is registered (docs/deploy.md).')
param entraClientId string = ''

// The defaults below repeat those of sync_core/settings.py; tests/infra keeps them equal.
@description('Name of the vault secret holding the app registration\'s client secret.')
param entraClientSecretName string = 'entra-client-secret'

// Not the settings.py default (secret, for local runs): in Azure the managed identity is the
// app registration's federated credential, so no secret exists (docs/deploy.md).
@description('How the app proves itself to Entra ID: federated (no secret), certificate or secret.')
@allowed(['federated', 'certificate', 'secret'])
param entraCredential string = 'federated'

@description('Name of the vault certificate (its PEM secret) when entraCredential is certificate.')
param entraCertificateName string = 'entra-certificate'

@description('Comma-separated URLs the browser may return to after linking a tenant.')
param connectReturnUrls string = ''

@description('Token authority; change it for a sovereign cloud.')
param entraAuthorityHost string = 'https://login.microsoftonline.com'

@description('Microsoft Graph root without the version segment; change it for a sovereign cloud.')
param graphBaseUrl string = 'https://graph.microsoft.com'

@description('NCRONTAB (6 fields, UTC) of the timer that looks for tenants due a sync.')
param syncSchedule string = '0 */15 * * * *'

@description('Shortest interval between two scheduled syncs of a tenant, in hours.')
param syncIntervalMinHours string = '0.25'

@description('Longest interval between two scheduled syncs of a tenant, in hours.')
param syncIntervalMaxHours string = '0.25'

@description('How often each tenant gets a full, reconciling run between delta runs, in hours.')
param syncReconcileHours string = '24'

@description('How long run records are kept, in days; a held or failed run stays until a later run succeeded.')
param runRetentionDays string = '90'
@description('Email address the alert rules notify (a tenant failing, no success for 24 h, deletions held, a credential expiring); empty: alerts show in the portal only.')
param alertEmail string = ''

@description('Runs of a tenant that must fail in a row before the failing alert fires.')
@minValue(1)
@maxValue(20)
param alertFailuresInARow int = 3

@description('Days a deleted vault stays recoverable; purge protection keeps its name taken until then.')
@minValue(7)
@maxValue(90)
param keyVaultSoftDeleteRetentionDays int = 7

// Stable per subscription, environment and region, so a re-provision updates rather than duplicates.
var resourceToken = toLower(uniqueString(subscription().id, environmentName, location))
var tags = {
  'azd-env-name': environmentName
}
var syncedTenantId = empty(entraTenantId) ? tenant().tenantId : entraTenantId

resource rg 'Microsoft.Resources/resourceGroups@2024-03-01' = {
  name: 'rg-${environmentName}'
  location: location
  tags: tags
}

module identity 'modules/identity.bicep' = {
  name: 'identity'
  scope: rg
  params: {
    name: 'id-${resourceToken}'
    location: location
    tags: tags
  }
}

module storage 'modules/storage.bicep' = {
  name: 'storage'
  scope: rg
  params: {
    name: 'st${resourceToken}'
    location: location
    tags: tags
    deploymentContainerName: 'app-package-${resourceToken}'
    identityPrincipalId: identity.outputs.principalId
    deployerPrincipalId: principalId
    deployerPrincipalType: principalType
  }
}

module vault 'modules/keyvault.bicep' = {
  name: 'keyvault'
  scope: rg
  params: {
    name: 'kv-${resourceToken}'
    location: location
    tags: tags
    softDeleteRetentionDays: keyVaultSoftDeleteRetentionDays
    identityPrincipalId: identity.outputs.principalId
    deployerPrincipalId: principalId
    deployerPrincipalType: principalType
  }
}

module monitoring 'modules/monitoring.bicep' = {
  name: 'monitoring'
  scope: rg
  params: {
    workspaceName: 'log-${resourceToken}'
    appInsightsName: 'appi-${resourceToken}'
    location: location
    tags: tags
    identityPrincipalId: identity.outputs.principalId
  }
}

module alerts 'modules/alerts.bicep' = {
  name: 'alerts'
  scope: rg
  params: {
    location: location
    tags: tags
    appInsightsId: monitoring.outputs.appInsightsId
    actionGroupName: 'ag-${resourceToken}'
    namePrefix: 'alert-${resourceToken}'
    alertEmail: alertEmail
    failuresInARow: alertFailuresInARow
  }
}

module app 'modules/function-app.bicep' = {
  name: 'function-app'
  scope: rg
  params: {
    planName: 'plan-${resourceToken}'
    appName: 'func-${resourceToken}'
    location: location
    tags: tags
    identityId: identity.outputs.id
    identityClientId: identity.outputs.clientId
    storageAccountName: storage.outputs.name
    deploymentContainerUrl: storage.outputs.deploymentContainerUrl
    appInsightsConnectionString: monitoring.outputs.connectionString
    keyVaultUrl: vault.outputs.uri
    entraTenantId: syncedTenantId
    entraClientId: entraClientId
    entraClientSecretName: entraClientSecretName
    entraCredential: entraCredential
    entraCertificateName: entraCertificateName
    connectReturnUrls: connectReturnUrls
    entraAuthorityHost: entraAuthorityHost
    graphBaseUrl: graphBaseUrl
    syncSchedule: syncSchedule
    syncIntervalMinHours: syncIntervalMinHours
    syncIntervalMaxHours: syncIntervalMaxHours
    syncReconcileHours: syncReconcileHours
    runRetentionDays: runRetentionDays
  }
}

// azd stores these in .azure/<env>/.env; docs/deploy.md uses them.
output AZURE_LOCATION string = location
// The deployment's own tenant and subscription, for signing back in after registering the app in
// another tenant (docs/deploy.md, step 3).
output AZURE_TENANT_ID string = tenant().tenantId
output AZURE_SUBSCRIPTION_ID string = subscription().subscriptionId
output AZURE_RESOURCE_GROUP string = rg.name
output AZURE_FUNCTION_APP_NAME string = app.outputs.name
output AZURE_KEY_VAULT_NAME string = vault.outputs.name
output AZURE_STORAGE_ACCOUNT_NAME string = storage.outputs.name
output ENTRA_TENANT_ID string = syncedTenantId
output KEY_VAULT_URL string = vault.outputs.uri
// Enter these on the app registration as its federated credential (docs/deploy.md).
output FEDERATED_CREDENTIAL_ISSUER string = '${environment().authentication.loginEndpoint}${tenant().tenantId}/v2.0'
output FEDERATED_CREDENTIAL_SUBJECT string = identity.outputs.principalId
output FEDERATED_CREDENTIAL_AUDIENCE string = 'api://AzureADTokenExchange'
output TABLES_ENDPOINT string = app.outputs.tablesEndpoint
output QUEUES_ENDPOINT string = app.outputs.queuesEndpoint
output BLOBS_ENDPOINT string = app.outputs.blobsEndpoint
