// The one identity the app uses for everything. User-assigned rather than system-assigned so its
// roles exist before the site starts, and so Flex deployment storage and Key Vault references
// can name it.
param name string
param location string
param tags object

resource identity 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' = {
  name: name
  location: location
  tags: tags
}

output id string = identity.id
output principalId string = identity.properties.principalId
output clientId string = identity.properties.clientId
