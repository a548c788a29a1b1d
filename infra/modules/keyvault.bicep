// Holds the Entra app registration's client secret. The secret itself is never in Bicep: the admin
// stores it after registering the app (docs/deploy.md), and the app reads it at run time.
param name string
param location string
param tags object
param identityPrincipalId string

@minValue(7)
@maxValue(90)
param softDeleteRetentionDays int

@description('Optional: let the person or CI login that runs azd write the client secret.')
param deployerPrincipalId string = ''

@allowed([
  'User'
  'ServicePrincipal'
])
param deployerPrincipalType string = 'User'

var keyVaultSecretsUser = '4633458b-17de-408a-b874-0445c86b69e6'
var keyVaultSecretsOfficer = 'b86a8fe4-44ce-4948-aee5-eccb2c155cd7'

resource vault 'Microsoft.KeyVault/vaults@2023-07-01' = {
  // checkov:skip=CKV_AZURE_109: no VNet in the default deployment; Flex reaches the vault over its public endpoint (App Service is not a trusted service for the firewall bypass), and RBAC still demands an Entra token and a role
  // checkov:skip=CKV_AZURE_189: public network access stays on because the default deployment has no VNet or private endpoint; RBAC still demands an Entra token and a role
  name: name
  location: location
  tags: tags
  properties: {
    // The vault trusts the subscription's tenant (where the managed identity lives), which need
    // not be the tenant whose users are synced.
    tenantId: subscription().tenantId
    sku: {
      family: 'A'
      name: 'standard'
    }
    enableRbacAuthorization: true
    enableSoftDelete: true
    softDeleteRetentionInDays: softDeleteRetentionDays
    enablePurgeProtection: true
    enabledForDeployment: false
    enabledForDiskEncryption: false
    enabledForTemplateDeployment: false
    publicNetworkAccess: 'Enabled'
    networkAcls: {
      defaultAction: 'Allow'
      bypass: 'AzureServices'
    }
  }
}

// Read secret values, nothing else: no listing of keys or certificates, no writes.
resource identitySecretsUser 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(vault.id, identityPrincipalId, keyVaultSecretsUser)
  scope: vault
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', keyVaultSecretsUser)
    principalId: identityPrincipalId
    principalType: 'ServicePrincipal'
  }
}

// With RBAC authorisation even the subscription owner cannot write a secret without a data role.
resource deployerSecretsOfficer 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (!empty(deployerPrincipalId)) {
  name: guid(vault.id, deployerPrincipalId, keyVaultSecretsOfficer)
  scope: vault
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', keyVaultSecretsOfficer)
    principalId: deployerPrincipalId
    principalType: deployerPrincipalType
  }
}

output name string = vault.name
output uri string = vault.properties.vaultUri
