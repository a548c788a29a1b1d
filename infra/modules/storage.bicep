// One account serves the Functions host (deployment package, timer and trigger leases, the queue)
// and the app's own tables. Shared keys are off: every caller signs in with Entra ID.
param name string
param location string
param tags object
param deploymentContainerName string
param identityPrincipalId string

@description('Optional: also let the person or CI login that runs azd read and write the tables.')
param deployerPrincipalId string = ''

@allowed([
  'User'
  'ServicePrincipal'
])
param deployerPrincipalType string = 'User'

// Names from sync_core/adapters/storage_names.py (TABLE_NAMES, SYNC_QUEUE); tests/infra keeps
// them equal. The host moves a message to <queue>-poison after 5 failed attempts; creating it
// here makes it visible (and alertable) before the first failure.
var tableNames = [
  'Employees'
  'SyncRuns'
  'TenantConfigs'
  'SyncLeases'
  'GroupMemberships'
  'EmployeeManagers'
]
var queueNames = [
  'sync-requests'
  'sync-requests-poison'
]

// The photos container (sync_core/adapters/blobs.py PHOTOS_CONTAINER; tests/infra keeps it equal).
var photosContainerName = 'employee-photos'

var storageBlobDataOwner = 'b7e6dc6d-f1e8-4753-8033-0f276bb0955b'
// Built-in role "Storage Blob Data Contributor" (learn.microsoft.com/azure/role-based-access-control/built-in-roles/storage).
var storageBlobDataContributor = 'ba92f5b4-2d11-453d-a403-e96b0029c9fe'
var storageQueueDataContributor = '974c5e8b-45b9-4653-ba55-5f855dd0fb88'
var storageTableDataContributor = '0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3'

resource storage 'Microsoft.Storage/storageAccounts@2023-05-01' = {
  // checkov:skip=CKV_AZURE_35: no VNet in the default deployment, so Flex reaches storage over the public endpoint; with shared keys off every request still needs an Entra token and a data role
  // checkov:skip=CKV_AZURE_59: public network access stays on because the default deployment has no VNet or private endpoints; access is Entra-only (shared keys off)
  name: name
  location: location
  tags: tags
  kind: 'StorageV2'
  // Geo-redundant: tenant configurations and run history are not rebuilt by a sync.
  sku: {
    name: 'Standard_GRS'
  }
  properties: {
    supportsHttpsTrafficOnly: true
    minimumTlsVersion: 'TLS1_2'
    allowSharedKeyAccess: false
    allowBlobPublicAccess: false
    allowCrossTenantReplication: false
    defaultToOAuthAuthentication: true
    publicNetworkAccess: 'Enabled'
    networkAcls: {
      defaultAction: 'Allow'
      bypass: 'AzureServices'
    }
  }
}

resource blobService 'Microsoft.Storage/storageAccounts/blobServices@2023-05-01' = {
  parent: storage
  name: 'default'
  properties: {
    deleteRetentionPolicy: {
      enabled: true
      days: 7
    }
    containerDeleteRetentionPolicy: {
      enabled: true
      days: 7
    }
  }
}

// Flex Consumption deploys from here: azd uploads the package, the platform pulls it.
resource deploymentContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = {
  parent: blobService
  name: deploymentContainerName
  properties: {
    publicAccess: 'None'
  }
}

// Profile photos, one blob per employee (docs/configuration.md "Photos"): private, read by the
// signature service with its own identity (Storage Blob Data Reader on this container).
resource photosContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = {
  parent: blobService
  name: photosContainerName
  properties: {
    publicAccess: 'None'
  }
}

resource tableService 'Microsoft.Storage/storageAccounts/tableServices@2023-05-01' = {
  parent: storage
  name: 'default'
}

resource tables 'Microsoft.Storage/storageAccounts/tableServices/tables@2023-05-01' = [
  for tableName in tableNames: {
    parent: tableService
    name: tableName
  }
]

resource queueService 'Microsoft.Storage/storageAccounts/queueServices@2023-05-01' = {
  parent: storage
  name: 'default'
}

resource queues 'Microsoft.Storage/storageAccounts/queueServices/queues@2023-05-01' = [
  for queueName in queueNames: {
    parent: queueService
    name: queueName
  }
]

// Blob Data Owner, not Contributor: the Functions host manages blob leases and containers.
resource identityBlobDataOwner 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(storage.id, identityPrincipalId, storageBlobDataOwner)
  scope: storage
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', storageBlobDataOwner)
    principalId: identityPrincipalId
    principalType: 'ServicePrincipal'
  }
}

// Scoped to the photos container: what the sync needs to write and delete photos, should the
// account-wide Owner above ever be narrowed to the host's own containers.
resource identityPhotosBlobDataContributor 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(photosContainer.id, identityPrincipalId, storageBlobDataContributor)
  scope: photosContainer
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', storageBlobDataContributor)
    principalId: identityPrincipalId
    principalType: 'ServicePrincipal'
  }
}

resource identityQueueDataContributor 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(storage.id, identityPrincipalId, storageQueueDataContributor)
  scope: storage
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', storageQueueDataContributor)
    principalId: identityPrincipalId
    principalType: 'ServicePrincipal'
  }
}

resource identityTableDataContributor 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(storage.id, identityPrincipalId, storageTableDataContributor)
  scope: storage
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', storageTableDataContributor)
    principalId: identityPrincipalId
    principalType: 'ServicePrincipal'
  }
}

// Lets the admin run the CLI against the deployed tables (tenant config, employees, runs):
// with shared keys off, the portal's Storage browser needs this too.
resource deployerTableDataContributor 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (!empty(deployerPrincipalId)) {
  name: guid(storage.id, deployerPrincipalId, storageTableDataContributor)
  scope: storage
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', storageTableDataContributor)
    principalId: deployerPrincipalId
    principalType: deployerPrincipalType
  }
}

output name string = storage.name
output photosContainerName string = photosContainer.name
output deploymentContainerUrl string = '${storage.properties.primaryEndpoints.blob}${deploymentContainer.name}'
