// The Flex Consumption plan and the function app. Every app setting below is either one that
// sync_core/settings.py reads (tests/infra compares the two) or one the Functions host needs;
// Flex Consumption rejects FUNCTIONS_WORKER_RUNTIME, WEBSITE_RUN_FROM_PACKAGE and the like,
// so the runtime and the package location live in functionAppConfig instead.
param planName string
param appName string
param location string
param tags object
param identityId string
param identityClientId string
param storageAccountName string
param deploymentContainerUrl string
param appInsightsConnectionString string
param keyVaultUrl string
param entraTenantId string
param entraClientId string
param entraClientSecretName string
param entraCredential string
param entraCertificateName string
param connectReturnUrls string
param entraAuthorityHost string
param graphBaseUrl string
param syncSchedule string
param syncIntervalMinHours string
param syncIntervalMaxHours string
param syncReconcileHours string
param runRetentionDays string

@description('Upper bound on scale-out; a sync is I/O bound on Graph and Table Storage, not on CPU. Flex Consumption accepts 40 at the lowest.')
// Flex Consumption's lowest maximum instance count is 40 (Microsoft's flex-consumption-plan
// documentation); a smaller value fails at deployment, so it fails here, at validation.
@minValue(40)
@maxValue(1000)
param maximumInstanceCount int = 40

// Built from the account name rather than primaryEndpoints so there is no trailing slash. The app
// itself runs in public Azure (AzureWebJobsStorage__accountName assumes public endpoints); only
// the synced tenant may live in a sovereign cloud (ENTRA_AUTHORITY_HOST, GRAPH_BASE_URL).
var tablesEndpoint = 'https://${storageAccountName}.table.${environment().suffixes.storage}'
var queuesEndpoint = 'https://${storageAccountName}.queue.${environment().suffixes.storage}'
var blobsEndpoint = 'https://${storageAccountName}.blob.${environment().suffixes.storage}'

resource plan 'Microsoft.Web/serverfarms@2024-04-01' = {
  name: planName
  location: location
  tags: tags
  kind: 'functionapp'
  sku: {
    name: 'FC1'
    tier: 'FlexConsumption'
  }
  // checkov:skip=CKV_AZURE_225: Flex Consumption offers zone redundancy only in some regions and only with zone-redundant storage; a zone outage delays a sync (the next timer tick or queue retry resumes it)
  properties: {
    reserved: true
  }
}

resource site 'Microsoft.Web/sites@2024-04-01' = {
  // checkov:skip=CKV_AZURE_222: no VNet in the default deployment, and the Sync Now HTTP trigger must be reachable by the admin; it demands a function key
  // checkov:skip=CKV_AZURE_17: client certificates would break the function-key calls documented in docs/deploy.md; HTTPS only and TLS 1.2 protect the channel
  // checkov:skip=CKV_AZURE_212: numberOfWorkers is a dedicated-plan setting; Flex Consumption adds and replaces instances per trigger by itself
  // checkov:skip=CKV_AZURE_213: health check probes a warm HTTP endpoint to evict bad instances; this app is timer and queue driven, scales to zero and reports failures to Application Insights
  name: appName
  location: location
  // azd finds the app to deploy by this tag; the value is the service name in azure.yaml.
  tags: union(tags, {
    'azd-service-name': 'sync'
  })
  kind: 'functionapp,linux'
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: {
      '${identityId}': {}
    }
  }
  properties: {
    serverFarmId: plan.id
    httpsOnly: true
    publicNetworkAccess: 'Enabled'
    // Without this, Key Vault references would try a system-assigned identity the app lacks.
    keyVaultReferenceIdentity: identityId
    siteConfig: {
      minTlsVersion: '1.2'
      scmMinTlsVersion: '1.2'
      ftpsState: 'Disabled'
      http20Enabled: true
      appSettings: [
        // Functions host: storage and the queue trigger's connection ("AzureWebJobsStorage"),
        // identity-based. The queue service URI follows from the account name.
        {
          name: 'AzureWebJobsStorage__accountName'
          value: storageAccountName
        }
        {
          name: 'AzureWebJobsStorage__credential'
          value: 'managedidentity'
        }
        {
          name: 'AzureWebJobsStorage__clientId'
          value: identityClientId
        }
        // Telemetry signed with the identity; local auth is disabled on the component.
        {
          name: 'APPLICATIONINSIGHTS_CONNECTION_STRING'
          value: appInsightsConnectionString
        }
        {
          name: 'APPLICATIONINSIGHTS_AUTHENTICATION_STRING'
          value: 'ClientId=${identityClientId};Authorization=AAD'
        }
        // sync_core/settings.py
        {
          name: 'ENTRA_TENANT_ID'
          value: entraTenantId
        }
        {
          name: 'ENTRA_CLIENT_ID'
          value: entraClientId
        }
        {
          name: 'KEY_VAULT_URL'
          value: keyVaultUrl
        }
        {
          name: 'ENTRA_CLIENT_SECRET_NAME'
          value: entraClientSecretName
        }
        {
          name: 'ENTRA_CREDENTIAL'
          value: entraCredential
        }
        {
          name: 'ENTRA_CERTIFICATE_NAME'
          value: entraCertificateName
        }
        {
          name: 'CONNECT_RETURN_URLS'
          value: connectReturnUrls
        }
        {
          name: 'ENTRA_AUTHORITY_HOST'
          value: entraAuthorityHost
        }
        {
          name: 'GRAPH_BASE_URL'
          value: graphBaseUrl
        }
        {
          name: 'TABLES_ENDPOINT'
          value: tablesEndpoint
        }
        {
          name: 'QUEUES_ENDPOINT'
          value: queuesEndpoint
        }
        {
          name: 'BLOBS_ENDPOINT'
          value: blobsEndpoint
        }
        {
          name: 'SYNC_SCHEDULE'
          value: syncSchedule
        }
        {
          name: 'SYNC_INTERVAL_MIN_HOURS'
          value: syncIntervalMinHours
        }
        {
          name: 'SYNC_INTERVAL_MAX_HOURS'
          value: syncIntervalMaxHours
        }
        {
          name: 'SYNC_RECONCILE_HOURS'
          value: syncReconcileHours
        }
        {
          name: 'RUN_RETENTION_DAYS'
          value: runRetentionDays
        }
        {
          name: 'AZURE_CLIENT_ID'
          value: identityClientId
        }
      ]
    }
    functionAppConfig: {
      deployment: {
        storage: {
          type: 'blobContainer'
          value: deploymentContainerUrl
          authentication: {
            type: 'UserAssignedIdentity'
            userAssignedIdentityResourceId: identityId
          }
        }
      }
      scaleAndConcurrency: {
        maximumInstanceCount: maximumInstanceCount
        instanceMemoryMB: 2048
      }
      runtime: {
        name: 'python'
        version: '3.11'
      }
    }
  }
}

// No FTP and no basic-auth publishing: azd deploys with the signed-in user's Entra token.
resource ftpPublishing 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2024-04-01' = {
  parent: site
  name: 'ftp'
  properties: {
    allow: false
  }
}

resource scmPublishing 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2024-04-01' = {
  parent: site
  name: 'scm'
  properties: {
    allow: false
  }
}

output name string = site.name
output tablesEndpoint string = tablesEndpoint
output queuesEndpoint string = queuesEndpoint
output blobsEndpoint string = blobsEndpoint
